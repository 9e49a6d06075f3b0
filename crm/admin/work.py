"""Tasks and notes for the people who work the CRM."""

from django.contrib import admin, messages

from crm.admin.base import BigTableMixin, OwnerFieldMixin, adopt
from crm.models import Note, Task
from crm.services import note_add, task_complete, task_create


@admin.register(Task)
class TaskAdmin(OwnerFieldMixin, BigTableMixin, admin.ModelAdmin):
    list_display = ("title", "contact", "owner", "status", "due_at", "completed_at")
    list_filter = ("status", "owner", "due_at")
    search_fields = ("title", "contact__email")
    ordering = ("status", "due_at", "-pk")
    list_select_related = ("contact", "owner")
    autocomplete_fields = ("contact", "owner")
    # Status moves only through task_complete() (the "Mark done" action).
    readonly_fields = ("status", "completed_at", "source", "created_at", "updated_at")
    fields = (
        "title",
        "description",
        "contact",
        "owner",
        "due_at",
        "status",
        "completed_at",
        "source",
        "created_at",
        "updated_at",
    )
    actions = ("mark_done",)

    def save_model(self, request, obj, form, change):
        if change:
            # Title, description, owner and due date are plain edits with no service.
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        task = task_create(
            title=data["title"],
            description=data["description"],
            contact=data["contact"],
            owner=data["owner"],
            due_at=data["due_at"],
            source="admin",
        )
        adopt(obj, task)

    @admin.action(description="Mark done", permissions=["change"])
    def mark_done(self, request, queryset):
        count = 0
        for task in queryset.filter(status=Task.Status.OPEN):
            task_complete(task=task)
            count += 1
        self.message_user(request, f"Marked {count} task(s) done.", messages.SUCCESS)


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ("short_body", "contact", "author", "created_at")
    list_filter = ("author", "created_at")
    search_fields = ("body", "contact__email")
    ordering = ("-pk",)
    list_select_related = ("contact", "author")
    autocomplete_fields = ("contact",)
    fields = ("contact", "body", "author", "created_at")
    readonly_fields = ("author", "created_at")

    @admin.display(description="note")
    def short_body(self, note: Note) -> str:
        return str(note)

    def save_model(self, request, obj, form, change):
        if change:
            # Correcting a note's text has no side effects and no service.
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        adopt(obj, note_add(contact=data["contact"], body=data["body"], author=request.user))
