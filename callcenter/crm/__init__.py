"""CRM connectors (Bitrix24, Zoho CRM) and signed outgoing webhooks."""
