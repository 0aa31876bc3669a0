"""JSON responses encoded by orjson (large usage batches spend real time in encoding)."""

from typing import Any

import orjson
from starlette.responses import JSONResponse


class FastJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
