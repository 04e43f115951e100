"""Promotions an admin manages (``PromotionService``), the JSON API and its shapes."""
