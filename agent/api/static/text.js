// Every word the clerk reads on the counter page, in one place (issue 13): plain
// Vietnamese that says what happened and what to do, without protocol names (no
// "PACE", "CAN", status words). The agent's API and logs stay in English; the page
// maps the API's codes and statuses to these texts and never shows an English
// message from the API. app.js reads window.IDAGENT_TEXT.
"use strict";

(function () {
  const IT = "báo bộ phận CNTT";

  // error code (API answers and "error" events) → [what happened, what to do]
  const ERRORS = {
    need_access: ["Chưa mở được chip của thẻ", "Quét mã QR trên thẻ, hoặc nhập 6 số cuối của số CCCD."],
    access_denied: ["Số vừa nhập không mở được chip",
                    "Kiểm tra lại 6 số cuối của số CCCD in trên thẻ, hoặc quét mã QR trên thẻ."],
    can_not_accepted: ["Số vừa nhập không mở được chip",
                       "Kiểm tra lại 6 số cuối của số CCCD in trên thẻ, hoặc quét mã QR trên thẻ."],
    pace_failed: ["Không mở được chip của thẻ", "Đặt lại thẻ cho nằm yên giữa đầu đọc, rồi thử lại."],
    pace_interrupted: ["Thẻ bị xê dịch khi đang đọc", "Đặt thẻ nằm yên giữa đầu đọc; máy sẽ tự đọc lại."],
    read_interrupted: ["Thẻ bị xê dịch khi đang đọc", "Đặt thẻ nằm yên giữa đầu đọc; máy sẽ tự đọc lại."],
    read_incomplete: ["Thẻ bị nhấc ra trước khi đọc xong", "Đặt lại thẻ và giữ yên đến khi hiện thông tin."],
    card_removed: ["Thẻ bị nhấc ra trước khi đọc xong", "Đặt lại thẻ và giữ yên đến khi hiện thông tin."],
    secure_messaging: ["Mất liên lạc với chip khi đang đọc", "Đặt lại thẻ cho nằm yên giữa đầu đọc."],
    reader_gone: ["Đầu đọc thẻ vừa bị rút ra", "Cắm lại đầu đọc rồi đặt lại thẻ."],
    no_reader: ["Không thấy đầu đọc thẻ", "Kiểm tra dây cắm của đầu đọc; nếu vẫn không thấy, " + IT + "."],
    pcscd_down: ["Máy tính chưa nhận đầu đọc thẻ", "Rút đầu đọc ra, cắm lại; nếu vẫn lỗi, " + IT + "."],
    pcsc: ["Máy tính chưa nhận đầu đọc thẻ", "Rút đầu đọc ra, cắm lại; nếu vẫn lỗi, " + IT + "."],
    reader: ["Đầu đọc thẻ đang gặp lỗi", "Rút đầu đọc ra, cắm lại; nếu vẫn lỗi, " + IT + "."],
    no_card: ["Chưa có thẻ trên đầu đọc", "Đặt thẻ Căn cước lên đầu đọc."],
    not_cccd: ["Thẻ này không phải thẻ Căn cước gắn chip",
               "Kiểm tra lại thẻ; với thẻ không có chip, quét mã QR trên thẻ."],
    file_absent: ["Chip của thẻ thiếu thông tin cần đọc", "Quét mã QR trên thẻ và đối chiếu trực tiếp với thẻ."],
    needs_terminal_authentication: ["Máy chưa đọc được loại thẻ này", "Quét mã QR trên thẻ; " + IT + "."],
    unsupported_parameters: ["Máy chưa đọc được loại thẻ này", "Quét mã QR trên thẻ; " + IT + "."],
    protocol: ["Không đọc được chip của thẻ", "Đặt lại thẻ cho nằm yên; nếu vẫn lỗi, quét mã QR trên thẻ."],
    apdu: ["Không đọc được chip của thẻ", "Đặt lại thẻ cho nằm yên; nếu vẫn lỗi, quét mã QR trên thẻ."],
    response_too_short: ["Không đọc được chip của thẻ", "Đặt lại thẻ cho nằm yên; nếu vẫn lỗi, quét mã QR trên thẻ."],
    read_failed: ["Không đọc được chip của thẻ", "Đặt lại thẻ cho nằm yên; nếu vẫn lỗi, quét mã QR trên thẻ."],
    parse: ["Thông tin trong chip không đọc được", "Quét mã QR trên thẻ và đối chiếu trực tiếp với thẻ."],
    qr_payload: ["Mã vừa quét không phải mã QR của thẻ Căn cước", "Quét mã QR in ở mặt trước thẻ."],
    qr_image: ["Không đọc được mã QR", "Đưa mã QR lại gần, giữ yên và đủ sáng."],
    serial_scanner: ["Máy quét mã QR không hoạt động", "Kiểm tra dây cắm máy quét; nếu vẫn lỗi, " + IT + "."],
    camera: ["Camera quét mã QR không hoạt động", "Kiểm tra dây cắm camera; nếu vẫn lỗi, " + IT + "."],
    evdev_unavailable: ["Máy quét mã QR không hoạt động", "Kiểm tra dây cắm máy quét; nếu vẫn lỗi, " + IT + "."],
    probable_clone: ["Không gửi được hồ sơ: chip nghi là chip sao chép",
                     "Đề nghị công dân xuất trình giấy tờ khác và báo cơ quan công an."],
    altered_data: ["Không gửi được hồ sơ: thông tin trên chip không hợp lệ",
                   "Đề nghị công dân xuất trình giấy tờ khác."],
    not_configured: ["Máy này chưa được cài đặt chức năng đó", IT + "."],
    intake_config: ["Máy này chưa được cài đặt gửi hồ sơ", IT + "."],
    outbox: ["Không lưu được hồ sơ để gửi", "Thử lại; nếu vẫn lỗi, " + IT + "."],
    outbox_item: ["Hồ sơ này không còn trong hàng chờ gửi", "Đọc lại thẻ rồi gửi hồ sơ mới."],
    no_identity: ["Chưa có thông tin thẻ trên màn hình", "Đặt thẻ lên đầu đọc hoặc quét mã QR trên thẻ."],
    no_photo: ["Không hiện được ảnh chân dung trong chip", "Đối chiếu người với ảnh in trên thẻ."],
    no_token: ["Trang chưa được cấp quyền", "Mở lại trang bằng đường dẫn phần mềm in ra (có #token=…)."],
    bad_token: ["Trang chưa được cấp quyền", "Mở lại trang bằng đường dẫn phần mềm in ra (có #token=…)."],
    bad_origin: ["Trang này không được phép kết nối", IT + "."],
    bad_host: ["Trang này không được phép kết nối", IT + "."],
    trust_store: ["Máy chưa được cài đặt đủ để kiểm tra thẻ", IT + "."],
    config: ["Phần mềm đọc thẻ chưa được cài đặt đúng", IT + "."],
    internal: ["Có lỗi khi xử lý thẻ", "Đặt lại thẻ; nếu lặp lại, " + IT + "."],
  };
  const ERROR_DEFAULT = ["Có lỗi xảy ra", "Thử lại; nếu lặp lại, " + IT + "."];

  // verdict: [badge, why, what to do]
  const VERDICTS = {
    verified: ["Đã xác thực", "Chip thật; thông tin đúng như cơ quan cấp thẻ đã ký.", ""],
    probable_clone: ["Nghi thẻ giả (chip sao chép)",
                     "Thông tin giống thẻ thật nhưng chip không phải chip gốc: có thể là thẻ sao chép.",
                     "Không tiếp nhận bằng thẻ này. Đề nghị công dân xuất trình giấy tờ khác và báo cơ quan công an."],
    altered: ["Thông tin chip không hợp lệ",
              "Thông tin trong chip không khớp chữ ký số của cơ quan cấp thẻ: có thể đã bị sửa.",
              "Không tiếp nhận bằng thẻ này. Đề nghị công dân xuất trình giấy tờ khác."],
    untrusted: ["Chưa xác thực", "Máy chưa có chứng thư của cơ quan cấp thẻ để kiểm tra thẻ này.",
                "Đối chiếu ảnh và thông tin với thẻ; " + IT + "."],
    unchecked: ["Chưa xác thực", "Không kiểm tra được chữ ký số của thẻ.",
                "Đặt lại thẻ để đọc lại; nếu vẫn vậy, đối chiếu ảnh và thông tin với thẻ."],
    chip_unproven: ["Chưa xác thực", "Chip chưa hoàn tất bước kiểm tra chip thật.",
                    "Đặt lại thẻ cho nằm yên để đọc lại."],
    error: ["Chưa xác thực", "Không kiểm tra được thẻ.", "Đặt lại thẻ để đọc lại."],
  };

  const BHYT = {
    valid: "Thẻ BHYT còn giá trị",
    valid_other_ministry: "Thẻ BHYT còn giá trị (thẻ của Bộ Quốc phòng/Bộ Công an)",
    replaced: "Thẻ BHYT đã được cấp thẻ mới",
    expired: "Thẻ BHYT đã hết hạn",
    not_found: "Không tìm thấy thông tin thẻ BHYT",
    wrong_name: "Họ tên không khớp với thẻ BHYT",
    wrong_dob: "Ngày sinh không khớp với thẻ BHYT",
    revoked: "Thẻ BHYT đã bị thu hồi",
    gateway_unavailable: "Cổng tra cứu BHYT đang không trả lời",
    gateway_error: "Cổng tra cứu BHYT báo lỗi",
    auth_error: "Tài khoản tra cứu BHYT bị từ chối",
    error: "Không tra cứu được thẻ BHYT",
    pending: "Đang tra cứu thẻ BHYT…",
    untrusted: "Kết quả tra cứu BHYT chưa đáng tin",
    skipped: "Không tra cứu BHYT",
  };
  const BHYT_HINT = {
    gateway_unavailable: "Vẫn tiếp nhận bình thường; tra cứu lại sau.",
    gateway_error: "Vẫn tiếp nhận bình thường; tra cứu lại sau.",
    auth_error: IT + ".",
    error: "Vẫn tiếp nhận bình thường; tra cứu lại sau.",
    untrusted: "Chip nghi là chip sao chép: kết quả này có thể là của người khác.",
    skipped: "Thông tin trên chip không hợp lệ nên máy không gửi đi tra cứu.",
  };

  // one progress line per file of the chip, in clerk words
  const STEPS = {
    CardAccess: "Đang mở chip…",
    COM: "Đang mở chip…",
    SOD: "Đang đọc chữ ký số của cơ quan cấp thẻ…",
    DG1: "Đang đọc thông tin trên thẻ…",
    DG2: "Đang đọc ảnh chân dung…",
    DG13: "Đang đọc thông tin công dân…",
    DG14: "Đang kiểm tra chip thật…",
    DG15: "Đang kiểm tra chip thật…",
    checking: "Đang kiểm tra tính xác thực…",
    other: "Đang đọc thẻ…",
  };

  const INTAKE = {
    sending: "Đang gửi…",
    queued: "Đã đưa hồ sơ vào hàng chờ gửi…",
    retrying: "Chưa gửi được, máy đang tự gửi lại (lần {n})…",
    delivered: "Đã gửi hồ sơ. Số biên nhận: {receipt}",
    delivered_no_receipt: "Đã gửi hồ sơ (nơi nhận không trả số biên nhận).",
    failed: "Gửi hồ sơ không thành công. Bấm \u201CGửi lại\u201D; nếu vẫn lỗi, " + IT + ".",
    resend: "Gửi lại",
    send: "Gửi hồ sơ",
    not_configured: "Máy này chưa được cài đặt gửi hồ sơ; " + IT + ".",
  };

  // "Gõ vào ứng dụng": the agent types the verified card, as a QR scanner would, into the
  // desk application's window; a refusal (by the API's code) says what to do
  const WEDGE = {
    button: "Gõ vào ứng dụng",
    typing: "Đang gõ vào ứng dụng…",
    typed: "Đã gõ thông tin thẻ vào \u201C{window}\u201D.",
    only_verified: "Chỉ gõ được thông tin của thẻ đã xác thực.",
    refused: {
      wedge_disabled: "Máy này chưa bật chức năng gõ vào ứng dụng; " + IT + ".",
      wedge_unverified: "Không gõ: thẻ chưa được xác thực. Đối chiếu với thẻ và nhập tay.",
      wedge_not_from_chip: "Không gõ: có thông tin không đọc từ chip. Đặt lại thẻ để đọc lại.",
      wedge_no_window: "Không gõ: chưa thấy cửa sổ phần mềm tiếp nhận. Mở phần mềm đó rồi bấm lại.",
      wedge_several_windows: "Không gõ: đang mở nhiều cửa sổ phần mềm tiếp nhận. Đóng bớt cho còn một rồi bấm lại.",
      wedge_focus_lost: "Đã dừng gõ vì một cửa sổ khác được chọn. Xóa ô đã gõ dở trong phần mềm rồi bấm lại.",
      wedge_busy: "Máy đang gõ, xin chờ.",
      wedge_unavailable: "Máy này chưa gõ được vào ứng dụng (chưa có bàn phím ảo); " + IT + ".",
      wedge_config: "Chức năng gõ vào ứng dụng chưa được cài đặt đúng; " + IT + ".",
      wedge_failed: "Gõ không thành công. Bấm lại; nếu vẫn không được, " + IT + ".",
      no_identity: "Chưa có thông tin thẻ để gõ.",
    },
    refused_default: "Không gõ được vào ứng dụng; " + IT + ".",
  };

  window.IDAGENT_TEXT = {
    ERRORS, ERROR_DEFAULT, VERDICTS, BHYT, BHYT_HINT, STEPS, INTAKE, WEDGE,
    ACCESS: {
      no_key: "Nhập 6 số cuối của số CCCD (in trên thẻ)",
      key_refused: "Số vừa nhập không mở được chip. Kiểm tra lại 6 số cuối của số CCCD.",
      bad_input: ["Cần nhập đúng 6 chữ số", "Là 6 số cuối của số CCCD in trên thẻ."],
    },
    STILL_ON_READER: "Thẻ vẫn đang nằm trên đầu đọc.",
    REREAD: "Đọc lại",
    LINK_ON: "Đã kết nối",
    LINK_OFF: "Mất kết nối, đang thử lại…",
    NO_RIGHT: ["Trang chưa được cấp quyền", "Mở trang bằng đường dẫn phần mềm in ra (có #token=…)."],
    READER: { busy: "đang đọc", card: "có thẻ", ready: "sẵn sàng" },
  };
})();
