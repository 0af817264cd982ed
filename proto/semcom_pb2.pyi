from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Image(_message.Message):
    __slots__ = ("name", "format", "data")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    format: str
    data: bytes
    def __init__(self, name: _Optional[str] = ..., format: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("ms",)
    class MsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MS_FIELD_NUMBER: _ClassVar[int]
    ms: _containers.ScalarMap[str, float]
    def __init__(self, ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message", "stage")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    stage: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., stage: _Optional[str] = ...) -> None: ...

class ChannelReport(_message.Message):
    __slots__ = ("modulation", "code", "snr_db", "snr_kind", "esn0_db", "ebn0_db", "info_bits", "coded_bits", "symbols", "airtime_s", "bit_errors_raw", "bit_errors", "header_ok", "body_crc_ok", "ideal_header", "fading", "erased", "protected_bytes", "protected_modulation", "protected_code", "protected_symbols", "protected_bit_errors", "symbol_sample", "header_symbols", "analog_values", "analog_symbols", "analog_noise_var")
    MODULATION_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    SNR_DB_FIELD_NUMBER: _ClassVar[int]
    SNR_KIND_FIELD_NUMBER: _ClassVar[int]
    ESN0_DB_FIELD_NUMBER: _ClassVar[int]
    EBN0_DB_FIELD_NUMBER: _ClassVar[int]
    INFO_BITS_FIELD_NUMBER: _ClassVar[int]
    CODED_BITS_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    AIRTIME_S_FIELD_NUMBER: _ClassVar[int]
    BIT_ERRORS_RAW_FIELD_NUMBER: _ClassVar[int]
    BIT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    HEADER_OK_FIELD_NUMBER: _ClassVar[int]
    BODY_CRC_OK_FIELD_NUMBER: _ClassVar[int]
    IDEAL_HEADER_FIELD_NUMBER: _ClassVar[int]
    FADING_FIELD_NUMBER: _ClassVar[int]
    ERASED_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_MODULATION_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_CODE_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_BIT_ERRORS_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    HEADER_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    ANALOG_VALUES_FIELD_NUMBER: _ClassVar[int]
    ANALOG_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    ANALOG_NOISE_VAR_FIELD_NUMBER: _ClassVar[int]
    modulation: str
    code: str
    snr_db: float
    snr_kind: str
    esn0_db: float
    ebn0_db: float
    info_bits: int
    coded_bits: int
    symbols: int
    airtime_s: float
    bit_errors_raw: int
    bit_errors: int
    header_ok: bool
    body_crc_ok: bool
    ideal_header: bool
    fading: str
    erased: bool
    protected_bytes: int
    protected_modulation: str
    protected_code: str
    protected_symbols: int
    protected_bit_errors: int
    symbol_sample: _containers.RepeatedScalarFieldContainer[float]
    header_symbols: int
    analog_values: int
    analog_symbols: int
    analog_noise_var: float
    def __init__(self, modulation: _Optional[str] = ..., code: _Optional[str] = ..., snr_db: _Optional[float] = ..., snr_kind: _Optional[str] = ..., esn0_db: _Optional[float] = ..., ebn0_db: _Optional[float] = ..., info_bits: _Optional[int] = ..., coded_bits: _Optional[int] = ..., symbols: _Optional[int] = ..., airtime_s: _Optional[float] = ..., bit_errors_raw: _Optional[int] = ..., bit_errors: _Optional[int] = ..., header_ok: _Optional[bool] = ..., body_crc_ok: _Optional[bool] = ..., ideal_header: _Optional[bool] = ..., fading: _Optional[str] = ..., erased: _Optional[bool] = ..., protected_bytes: _Optional[int] = ..., protected_modulation: _Optional[str] = ..., protected_code: _Optional[str] = ..., protected_symbols: _Optional[int] = ..., protected_bit_errors: _Optional[int] = ..., symbol_sample: _Optional[_Iterable[float]] = ..., header_symbols: _Optional[int] = ..., analog_values: _Optional[int] = ..., analog_symbols: _Optional[int] = ..., analog_noise_var: _Optional[float] = ...) -> None: ...

class ReconOptions(_message.Message):
    __slots__ = ("strength", "steps", "guidance", "seed")
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    strength: float
    steps: int
    guidance: float
    seed: int
    def __init__(self, strength: _Optional[float] = ..., steps: _Optional[int] = ..., guidance: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class PayloadSizes(_message.Message):
    __slots__ = ("bytes", "total")
    class BytesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    BYTES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    bytes: _containers.ScalarMap[str, int]
    total: int
    def __init__(self, bytes: _Optional[_Mapping[str, int]] = ..., total: _Optional[int] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("item_id", "image", "error", "profile", "timings", "notes", "report", "name", "mode", "caption", "payload", "key_mask", "budget")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    KEY_MASK_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    image: Image
    error: ItemError
    profile: str
    timings: Timings
    notes: _containers.RepeatedScalarFieldContainer[str]
    report: ChannelReport
    name: str
    mode: str
    caption: str
    payload: PayloadSizes
    key_mask: KeyMask
    budget: _struct_pb2.Struct
    def __init__(self, item_id: _Optional[str] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ..., profile: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., notes: _Optional[_Iterable[str]] = ..., report: _Optional[_Union[ChannelReport, _Mapping]] = ..., name: _Optional[str] = ..., mode: _Optional[str] = ..., caption: _Optional[str] = ..., payload: _Optional[_Union[PayloadSizes, _Mapping]] = ..., key_mask: _Optional[_Union[KeyMask, _Mapping]] = ..., budget: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class KeyMask(_message.Message):
    __slots__ = ("rows", "cols", "bits")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    COLS_FIELD_NUMBER: _ClassVar[int]
    BITS_FIELD_NUMBER: _ClassVar[int]
    rows: int
    cols: int
    bits: bytes
    def __init__(self, rows: _Optional[int] = ..., cols: _Optional[int] = ..., bits: _Optional[bytes] = ...) -> None: ...

class TransmitRequest(_message.Message):
    __slots__ = ("item_id", "image", "mode", "quant_bits", "recon", "link_overrides", "analog_repeats", "jscc_cbr", "budget_bytes", "bpp", "budget_symbols", "latent_codec")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    QUANT_BITS_FIELD_NUMBER: _ClassVar[int]
    RECON_FIELD_NUMBER: _ClassVar[int]
    LINK_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    ANALOG_REPEATS_FIELD_NUMBER: _ClassVar[int]
    JSCC_CBR_FIELD_NUMBER: _ClassVar[int]
    BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    BPP_FIELD_NUMBER: _ClassVar[int]
    BUDGET_SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    LATENT_CODEC_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    image: Image
    mode: str
    quant_bits: int
    recon: ReconOptions
    link_overrides: _struct_pb2.Struct
    analog_repeats: int
    jscc_cbr: str
    budget_bytes: int
    bpp: float
    budget_symbols: int
    latent_codec: str
    def __init__(self, item_id: _Optional[str] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., mode: _Optional[str] = ..., quant_bits: _Optional[int] = ..., recon: _Optional[_Union[ReconOptions, _Mapping]] = ..., link_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., analog_repeats: _Optional[int] = ..., jscc_cbr: _Optional[str] = ..., budget_bytes: _Optional[int] = ..., bpp: _Optional[float] = ..., budget_symbols: _Optional[int] = ..., latent_codec: _Optional[str] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("item_id", "recon", "link_overrides", "header", "body", "protected_bytes", "analog", "analog_values")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    RECON_FIELD_NUMBER: _ClassVar[int]
    LINK_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ANALOG_FIELD_NUMBER: _ClassVar[int]
    ANALOG_VALUES_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    recon: ReconOptions
    link_overrides: _struct_pb2.Struct
    header: bytes
    body: bytes
    protected_bytes: int
    analog: bytes
    analog_values: int
    def __init__(self, item_id: _Optional[str] = ..., recon: _Optional[_Union[ReconOptions, _Mapping]] = ..., link_overrides: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., header: _Optional[bytes] = ..., body: _Optional[bytes] = ..., protected_bytes: _Optional[int] = ..., analog: _Optional[bytes] = ..., analog_values: _Optional[int] = ...) -> None: ...

class ReceivedFrame(_message.Message):
    __slots__ = ("item_id", "header", "body", "recon", "report", "analog", "analog_noise_var")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    RECON_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    ANALOG_FIELD_NUMBER: _ClassVar[int]
    ANALOG_NOISE_VAR_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    header: bytes
    body: bytes
    recon: ReconOptions
    report: ChannelReport
    analog: bytes
    analog_noise_var: bytes
    def __init__(self, item_id: _Optional[str] = ..., header: _Optional[bytes] = ..., body: _Optional[bytes] = ..., recon: _Optional[_Union[ReconOptions, _Mapping]] = ..., report: _Optional[_Union[ChannelReport, _Mapping]] = ..., analog: _Optional[bytes] = ..., analog_noise_var: _Optional[bytes] = ...) -> None: ...
