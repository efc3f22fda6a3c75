from service.core.permissions import Role

__all__ = ["Role"]
