"""Shipping zones and their methods an admin manages (``ShippingZoneService``) and their JSON API."""
