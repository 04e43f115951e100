"""Invoices and credit notes: gap-free numbers per kind and year, and PDFs made from the order snapshot."""
