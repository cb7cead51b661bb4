"""Model backends: each turns one Messages request into one Message or a BackendError."""
