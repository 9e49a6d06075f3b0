"""Tasks and notes for the people who work the CRM."""

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from crm.models import Activity, Contact, Note, Task
from crm.services.activities import activity_record
from crm.set_inserts import model_new, rows_insert


@transaction.atomic
def task_create(
    *,
    title: str,
    contact: Contact | None = None,
    owner: AbstractBaseUser | None = None,
    due_at: datetime.datetime | None = None,
    description: str = "",
    source: str = "",
) -> Task:
    """Create an open task for the owner (the contact's owner when none is given)."""
    if owner is None and contact is not None:
        owner = contact.owner
    task = Task(
        title=title,
        description=description,
        contact=contact,
        owner=owner,
        due_at=due_at,
        source=source,
    )
    task.full_clean(exclude=["contact", "owner"])
    task.save()
    return task


@dataclass(frozen=True)
class TaskInput:
    """One task to create with tasks_create (the owner defaults to the contact's)."""

    title: str
    contact: Contact | None = None
    owner: AbstractBaseUser | None = None
    due_at: datetime.datetime | None = None
    description: str = ""
    source: str = ""


@transaction.atomic
def tasks_create(*, items: Sequence[TaskInput]) -> list[Task]:
    """task_create for many tasks: each checked the same way, all written in one INSERT."""
    tasks = []
    for item in items:
        owner = item.owner
        if owner is None and item.contact is not None:
            owner = item.contact.owner
        task = _task_new(
            title=item.title,
            description=item.description,
            contact=item.contact,
            owner=owner,
            due_at=item.due_at,
            source=item.source,
        )
        task.full_clean(exclude=["contact", "owner"])
        tasks.append(task)
    rows_insert(Task, tasks)
    return tasks


_task_new = model_new(Task)


@transaction.atomic
def task_complete(*, task: Task) -> Task:
    """Mark an open task done; completing it twice keeps the first completion time."""
    Task.objects.filter(pk=task.pk, status=Task.Status.OPEN).update(
        status=Task.Status.DONE, completed_at=timezone.now(), updated_at=timezone.now()
    )
    task.refresh_from_db()
    return task


@transaction.atomic
def note_add(*, contact: Contact, body: str, author: AbstractBaseUser | None = None) -> Note:
    """Add a note to the contact and put it on their timeline."""
    note = Note(contact=contact, body=body, author=author)
    note.full_clean(exclude=["contact", "author"])
    note.save()
    activity_record(
        kind=Activity.Kind.NOTE_ADDED,
        source="crm",
        contact=contact,
        properties={"note_id": note.pk, "author_id": author.pk if author else None},
    )
    return note
