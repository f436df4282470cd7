"""Which encoder writes each standard library type, and which builder reads each library tag."""

from __future__ import annotations

from beautyspot.serializer.arrays import _build_ndarray, _build_numpy_scalar
from beautyspot.serializer.codec import _Builder, _Encoder
from beautyspot.serializer.frames import (
    _build_frame,
    _build_index,
    _build_multi_index,
    _build_pandas_array,
    _build_pandas_scalar,
    _build_range_index,
    _build_series,
)
from beautyspot.serializer.pytz_zones import _build_pytz
from beautyspot.serializer.stdlib import _STDLIB_CODECS
from beautyspot.serializer.tags import (
    _NDARRAY,
    _NUMPY_SCALAR,
    _PD_ARRAY,
    _PD_FRAME,
    _PD_INDEX,
    _PD_MULTI_INDEX,
    _PD_RANGE_INDEX,
    _PD_SCALAR,
    _PD_SERIES,
    _PYTZ,
)

_STDLIB_ENCODERS: dict[type, _Encoder] = {
    cls: _Encoder(tag, fields, holds_values) for tag, cls, fields, _, holds_values in _STDLIB_CODECS
}
_LIBRARY_BUILDERS: dict[int, _Builder] = {
    **{tag: _Builder(build) for tag, _, _, build, _ in _STDLIB_CODECS},
    _NDARRAY: _Builder(_build_ndarray),
    _NUMPY_SCALAR: _Builder(_build_numpy_scalar),
    _PD_ARRAY: _Builder(_build_pandas_array),
    _PD_INDEX: _Builder(_build_index),
    _PD_RANGE_INDEX: _Builder(_build_range_index),
    _PD_MULTI_INDEX: _Builder(_build_multi_index),
    _PD_SERIES: _Builder(_build_series),
    _PD_FRAME: _Builder(_build_frame),
    _PD_SCALAR: _Builder(_build_pandas_scalar),
    _PYTZ: _Builder(_build_pytz),
}
