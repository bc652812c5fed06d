"""Who may do what: dashboard users (argon2 passwords, roles) and the server's bearer tokens."""

from medsleep.auth.tokens import Token, TokenRegistry
from medsleep.auth.users import ROLES, User, load_users

__all__ = ["ROLES", "Token", "TokenRegistry", "User", "load_users"]
