"""Route handlers, one module per area; each handler declares who may call it."""
