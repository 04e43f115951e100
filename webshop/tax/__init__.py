"""Tax rates by destination an admin manages (``TaxRateService``) and their JSON API."""
