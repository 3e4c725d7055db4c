from caboose.repositories.base import BaseRepository, Page, Pagination, Sorting
from caboose.repositories.tenant import TenantRepository

__all__ = ["BaseRepository", "Page", "Pagination", "Sorting", "TenantRepository"]
