"""BaseRepository and TenantRepository against the real test database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from caboose.core.errors import ConflictError, NotFoundError
from caboose.models import Deployment, Project, Service
from caboose.repositories import Pagination, Sorting
from caboose.repositories.projects import (
    DeploymentRepository,
    ProjectRepository,
    ServiceRepository,
)
from tests.factories import (
    DeploymentFactory,
    EnvironmentFactory,
    ProjectFactory,
    ServiceFactory,
    TenantFactory,
    persist,
)


async def test_pagination_caps_the_limit_at_1000_and_clamps_negatives() -> None:
    assert Pagination(limit=5000).limit == 1000
    assert Pagination(limit=0).limit == 1
    assert Pagination(skip=-5).skip == 0


async def test_list_pages_through_everything_once(db_session: AsyncSession) -> None:
    tenant = TenantFactory.build()
    projects = [ProjectFactory.build(tenant=tenant, name=f"p-{i:02d}") for i in range(25)]
    await persist(db_session, tenant, *projects)
    repo = ProjectRepository(db_session, tenant.id)
    seen: list[str] = []
    skip = 0
    while True:
        page = await repo.list(
            pagination=Pagination(skip=skip, limit=10), sorting=Sorting("name", "asc")
        )
        assert page.total == 25
        seen += [p.name for p in page.items]
        if not page.has_more:
            break
        skip += 10
    assert seen == sorted(p.name for p in projects)


@pytest.mark.parametrize("sort_by", ["no_such_column", "tenant; DROP TABLE project", "__class__"])
async def test_sorting_on_unknown_columns_falls_back_to_the_default(
    db_session: AsyncSession, sort_by: str
) -> None:
    tenant = TenantFactory.build()
    await persist(db_session, tenant, *(ProjectFactory.build(tenant=tenant) for _ in range(3)))
    page = await ProjectRepository(db_session, tenant.id).list(sorting=Sorting(sort_by, "asc"))
    created = [p.created_at for p in page.items]
    assert created == sorted(created)
    assert page.total == 3


async def test_filters_by_value_list_and_null(db_session: AsyncSession) -> None:
    tenant = TenantFactory.build()
    project = ProjectFactory.build(tenant=tenant)
    a = ServiceFactory.build(project=project, name="a", repo_url="https://example.com/a.git")
    b = ServiceFactory.build(project=project, name="b")
    c = ServiceFactory.build(project=project, name="c")
    await persist(db_session, tenant, project, a, b, c)
    repo = ServiceRepository(db_session, tenant.id)
    assert [s.name for s in (await repo.list(filters={"name": "a"})).items] == ["a"]
    by_list = await repo.list(filters={"name": ["b", "c"]}, sorting=Sorting("name", "asc"))
    assert [s.name for s in by_list.items] == ["b", "c"]
    assert await repo.count(repo_url=None) == 2
    assert await repo.exists(name="a")
    assert not await repo.exists(name="zzz")
    with pytest.raises(ValueError, match="no column"):
        await repo.list(filters={"nonexistent": 1})


async def test_tenant_scope_reaches_through_joins(db_session: AsyncSession) -> None:
    mine, theirs = TenantFactory.build(), TenantFactory.build()
    my_service = ServiceFactory.build(project=ProjectFactory.build(tenant=mine))
    their_service = ServiceFactory.build(project=ProjectFactory.build(tenant=theirs))
    my_deployment = DeploymentFactory.build(service=my_service)
    their_deployment = DeploymentFactory.build(service=their_service)
    await persist(db_session, mine, theirs, my_deployment, their_deployment)

    services = ServiceRepository(db_session, mine.id)
    deployments = DeploymentRepository(db_session, mine.id)
    assert await services.get(my_service.id) is not None
    assert await services.get(their_service.id) is None
    assert [d.id for d in (await deployments.list()).items] == [my_deployment.id]
    assert await deployments.count() == 1
    with pytest.raises(NotFoundError) as raised:
        await deployments.get_or_raise(their_deployment.id)
    # The same words as for an id that does not exist at all: nothing is confirmed.
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError) as raised_missing:
        await deployments.get_or_raise(missing)
    assert str(raised.value).replace(str(their_deployment.id), "X") == str(
        raised_missing.value
    ).replace(str(missing), "X")


async def test_a_scope_of_several_workspaces_and_of_none(db_session: AsyncSession) -> None:
    one, two, three = TenantFactory.build(), TenantFactory.build(), TenantFactory.build()
    projects = [ProjectFactory.build(tenant=t) for t in (one, two, three)]
    await persist(db_session, one, two, three, *projects)
    assert await ProjectRepository(db_session, [one.id, two.id]).count() == 2
    assert await ProjectRepository(db_session, []).count() == 0


async def test_create_refuses_a_tenant_outside_the_scope(db_session: AsyncSession) -> None:
    mine, theirs = TenantFactory.build(), TenantFactory.build()
    await persist(db_session, mine, theirs)
    with pytest.raises(ValueError, match="scope"):
        await ProjectRepository(db_session, mine.id).create(tenant_id=theirs.id, name="sneaky")


async def test_duplicate_names_are_a_conflict_and_keep_the_session_usable(
    db_session: AsyncSession,
) -> None:
    tenant = TenantFactory.build()
    await persist(db_session, tenant)
    repo = ProjectRepository(db_session, tenant.id)
    first = await repo.create(tenant_id=tenant.id, name="api")
    with pytest.raises(ConflictError):
        await repo.create(tenant_id=tenant.id, name="api")
    # The failed insert was rolled back to its savepoint; earlier work is intact.
    assert await repo.get(first.id) is not None
    assert await repo.count() == 1


async def test_update_and_delete(db_session: AsyncSession) -> None:
    tenant = TenantFactory.build()
    project = ProjectFactory.build(tenant=tenant, name="old")
    await persist(db_session, tenant, project)
    repo = ProjectRepository(db_session, tenant.id)
    before = project.updated_at
    await repo.update(project, name="new", description="renamed")
    assert (await repo.get_or_raise(project.id)).name == "new"
    assert project.updated_at >= before
    with pytest.raises(ValueError):
        await repo.update(project, id=uuid.uuid4())
    await repo.delete(project)
    assert await repo.get(project.id) is None


async def test_deleting_a_project_cascades_to_everything_below(db_session: AsyncSession) -> None:
    tenant = TenantFactory.build()
    project = ProjectFactory.build(tenant=tenant)
    env = EnvironmentFactory.build(project=project)
    service = ServiceFactory.build(project=project)
    deployment = DeploymentFactory.build(service=service, environment=env)
    await persist(db_session, tenant, deployment)
    await db_session.delete(await db_session.get(Project, project.id))
    await db_session.flush()
    db_session.expunge_all()
    assert await db_session.get(Service, service.id) is None
    assert await db_session.get(Deployment, deployment.id) is None


async def test_timestamps_are_timezone_aware(db_session: AsyncSession) -> None:
    tenant = TenantFactory.build()
    project = ProjectFactory.build(tenant=tenant)
    await persist(db_session, tenant, project)
    db_session.expunge_all()
    loaded = await db_session.get(Project, project.id)
    assert loaded is not None
    assert loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() is not None and not loaded.created_at.utcoffset()
