"""/api/v1/schema/, served from memory (a module of its own: importing drf-spectacular's
views loads DRF's settings, which name crm.api.schema)."""

import threading

from django.utils import translation
from drf_spectacular.views import SpectacularAPIView
from rest_framework.response import Response


class CachedSchemaView(SpectacularAPIView):
    """Serve /api/v1/schema/ built once per process, under a lock.

    Generating it walks every view, serializer and extension, and drf-spectacular
    keeps state while it does: two threads generating at once (the first requests to
    a threaded gunicorn worker) could answer 500. The schema only changes with a
    deploy, so the first request builds it, concurrent ones wait for it, and every
    later one is served from memory.
    """

    _lock = threading.Lock()
    _built: dict[tuple, dict] = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, translation.get_language())
        with self._lock:
            if key not in self._built:
                generator = self.generator_class(
                    urlconf=self.urlconf, api_version=version, patterns=self.patterns
                )
                self._built[key] = generator.get_schema(request=request, public=self.serve_public)
        filename = self._get_filename(request, version)
        return Response(
            data=self._built[key],
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )
