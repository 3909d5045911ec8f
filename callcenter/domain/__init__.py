"""Domain logic: customers, identities, tickets, interactions. No web or telephony imports."""
