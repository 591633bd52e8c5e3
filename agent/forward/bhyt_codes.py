"""Result codes of the BHYT card-check gateway, as data.

Source of the codes (domain.md): the appendix to official letter 1923/BHXH-CNTT
(20/06/2024) for ``KQNhanLichSuKCB2024``. Each code maps to one machine status (what
the desk software branches on), whether the card can be used for this visit, and a
message for the clerk in Vietnamese and English. The exact wording of the 120–124
"reported reduction" variants is not in our source: they share one status and a
message that names the code.

Statuses that the gateway never sends (``gateway_unavailable``, ``gateway_error`` on a
transport failure, ``auth_error`` on a failed login) are defined here too, so every
result the client returns comes from this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class BhytStatus(StrEnum):
    VALID = "valid"
    VALID_OTHER_MINISTRY = "valid_other_ministry"
    REPLACED = "replaced"
    EXPIRED = "expired"
    NOT_FOUND = "not_found"
    WRONG_CARD_CODE = "wrong_card_code"
    WRONG_PROVINCE_CODE = "wrong_province_code"
    WRONG_BENEFIT_CODE = "wrong_benefit_code"
    OFFICER_NOT_REGISTERED = "officer_not_registered"
    OFFICER_NAME_MISMATCH = "officer_name_mismatch"
    WRONG_NAME = "wrong_name"
    WRONG_DOB = "wrong_dob"
    WRONG_FACILITY = "wrong_facility"
    CARD_DATA_ERROR = "card_data_error"
    REVOKED = "revoked"
    REPORTED_REDUCTION = "reported_reduction"
    CHILD_WITHOUT_CARD = "child_without_card"
    BAD_REQUEST = "bad_request"
    AUTH_ERROR = "auth_error"
    GATEWAY_ERROR = "gateway_error"
    GATEWAY_UNAVAILABLE = "gateway_unavailable"
    UNKNOWN = "unknown"


#: statuses that mean "no usable answer from the gateway" (CLI exit code 7)
UPSTREAM_FAILURES = frozenset({
    BhytStatus.AUTH_ERROR, BhytStatus.GATEWAY_ERROR, BhytStatus.GATEWAY_UNAVAILABLE,
    BhytStatus.BAD_REQUEST, BhytStatus.OFFICER_NOT_REGISTERED, BhytStatus.OFFICER_NAME_MISMATCH,
})


@dataclass(frozen=True)
class CodeInfo:
    code: str
    status: BhytStatus
    #: the card can be used for this visit
    usable: bool
    message_vi: str
    message_en: str


def _info(code: str, status: BhytStatus, usable: bool, vi: str, en: str) -> CodeInfo:
    return CodeInfo(code, status, usable, vi, en)


S = BhytStatus
_TABLE: tuple[CodeInfo, ...] = (
    _info("000", S.VALID, True, "Thẻ hợp lệ.", "The card is valid."),
    # 001/002: the gateway's own instruction (letter 1923/BHXH-CNTT) is to check the
    # card and the identity papers: these cards are not in the VSS register, so the
    # answer vouches for nothing more; the clerk must see them
    _info("001", S.VALID_OTHER_MINISTRY, True,
          "Thẻ do BHXH Bộ Quốc phòng quản lý: đề nghị kiểm tra thẻ và giấy tờ tùy thân.",
          "Card managed by the Ministry of Defence's social insurance: check the card and the identity papers."),
    _info("002", S.VALID_OTHER_MINISTRY, True,
          "Thẻ do BHXH Bộ Công an quản lý: đề nghị kiểm tra thẻ và giấy tờ tùy thân.",
          "Card managed by the Ministry of Public Security's social insurance: check the card and the "
          "identity papers."),
    _info("003", S.REPLACED, False,
          "Thẻ cũ đã hết giá trị sử dụng, đã được cấp thẻ mới: dùng thẻ mới.",
          "The old card has expired and a new card was issued: use the new card."),
    _info("004", S.REPLACED, True,
          "Thẻ cũ còn giá trị sử dụng, đã được cấp thẻ mới.",
          "The old card is still valid; a new card has been issued."),
    _info("010", S.EXPIRED, False, "Thẻ đã hết hạn sử dụng.", "The card has expired."),
    _info("050", S.NOT_FOUND, False, "Không có thông tin thẻ.", "No card information found."),
    _info("051", S.WRONG_CARD_CODE, False, "Mã thẻ không đúng.", "Wrong card code."),
    _info("052", S.WRONG_PROVINCE_CODE, False, "Mã tỉnh cấp thẻ không đúng.",
          "Wrong province code in the card code."),
    _info("053", S.WRONG_BENEFIT_CODE, False, "Mã quyền lợi thẻ không đúng.",
          "Wrong benefit code in the card code."),
    _info("054", S.OFFICER_NOT_REGISTERED, False,
          "Số CCCD của cán bộ tra cứu chưa được đăng ký tại cơ sở.",
          "The checking officer's ID is not registered at this facility."),
    _info("055", S.OFFICER_NAME_MISMATCH, False,
          "Họ tên cán bộ tra cứu không khớp với số CCCD đã đăng ký.",
          "The checking officer's name does not match the registered ID."),
    _info("060", S.WRONG_NAME, False, "Họ tên không đúng.", "Wrong full name."),
    _info("061", S.WRONG_NAME, False, "Họ tên không đúng (đúng ký tự đầu).",
          "Wrong full name (the first letter matches)."),
    _info("070", S.WRONG_DOB, False, "Ngày sinh không đúng.", "Wrong date of birth."),
    _info("090", S.WRONG_FACILITY, False, "Nơi đăng ký khám chữa bệnh ban đầu không đúng.",
          "Wrong primary-care facility."),
    _info("100", S.CARD_DATA_ERROR, False, "Lỗi dữ liệu thẻ.", "Card data error."),
    _info("101", S.GATEWAY_ERROR, False, "Lỗi máy chủ cổng tiếp nhận.", "Gateway server error."),
    _info("110", S.REVOKED, False, "Thẻ đã bị thu hồi.", "The card has been revoked."),
    _info("120", S.REPORTED_REDUCTION, False, "Thẻ đã bị báo giảm (mã 120).",
          "The card was reported reduced (code 120)."),
    _info("121", S.REPORTED_REDUCTION, False, "Thẻ đã bị báo giảm (mã 121).",
          "The card was reported reduced (code 121)."),
    _info("122", S.REPORTED_REDUCTION, False, "Thẻ đã bị báo giảm (mã 122).",
          "The card was reported reduced (code 122)."),
    _info("123", S.REPORTED_REDUCTION, False, "Thẻ đã bị báo giảm (mã 123).",
          "The card was reported reduced (code 123)."),
    _info("124", S.REPORTED_REDUCTION, False, "Thẻ đã bị báo giảm (mã 124).",
          "The card was reported reduced (code 124)."),
    _info("130", S.CHILD_WITHOUT_CARD, False, "Trẻ em chưa có thẻ.", "Child without a card."),
    _info("205", S.BAD_REQUEST, False, "Sai định dạng tham số gửi lên cổng.",
          "The gateway rejected the request format."),
    _info("401", S.AUTH_ERROR, False, "Lỗi xác thực tài khoản cổng BHYT.",
          "Authentication with the BHYT gateway failed."),
    _info("500", S.GATEWAY_ERROR, False, "Lỗi máy chủ cổng BHYT.", "BHYT gateway server error."),
)

CODES: dict[str, CodeInfo] = {info.code: info for info in _TABLE}

#: results the client makes itself (no gateway code); keyed by status
LOCAL: dict[BhytStatus, CodeInfo] = {
    S.GATEWAY_UNAVAILABLE: _info(
        "", S.GATEWAY_UNAVAILABLE, False,
        "Cổng BHYT đang không truy cập được; tạm dừng tra cứu, thử lại sau.",
        "The BHYT gateway is unreachable; lookups are paused, try again later."),
    S.GATEWAY_ERROR: _info(
        "", S.GATEWAY_ERROR, False,
        "Không nhận được trả lời hợp lệ từ cổng BHYT.",
        "No valid answer from the BHYT gateway."),
    S.AUTH_ERROR: _info(
        "", S.AUTH_ERROR, False,
        "Đăng nhập cổng BHYT thất bại: kiểm tra tài khoản và mật khẩu.",
        "Login to the BHYT gateway failed: check the account and password."),
}


def lookup(code: str) -> CodeInfo:
    """The table entry for a gateway code; an unknown code keeps the gateway's number."""
    info = CODES.get(code)
    if info is not None:
        return info
    return CodeInfo(code, S.UNKNOWN, False, f"Mã kết quả không xác định ({code}).",
                    f"Unknown result code ({code}).")
