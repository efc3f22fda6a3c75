"""Event logs exported by ticketing, CRM and case systems, and the handoffs discovered in them."""
