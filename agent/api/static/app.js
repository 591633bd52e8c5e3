// Counter page of the idagent desk agent.
// Security: every value from the card, the QR or the gateway is written with
// textContent (never innerHTML), so a payload holding HTML stays text. The API token
// comes from the URL fragment (#token=...), which the browser never sends to the
// server; it is moved to sessionStorage and removed from the address bar at once.
"use strict";

(function () {
  const TOKEN_KEY = "idagent.token";

  const LABELS = [
    // [field, Vietnamese label, wide (spans the row)]
    ["full_name", "Họ và tên", true],
    ["id_number", "Số CCCD", false],
    ["old_id_number", "Số CMND cũ", false],
    ["date_of_birth", "Ngày sinh", false],
    ["sex", "Giới tính", false],
    ["nationality", "Quốc tịch", false],
    ["ethnicity", "Dân tộc", false],
    ["religion", "Tôn giáo", false],
    ["date_of_issue", "Ngày cấp", false],
    ["place_of_origin", "Quê quán", true],
    ["place_of_residence", "Nơi thường trú", true],
    ["identifying_marks", "Đặc điểm nhận dạng", true],
    ["date_of_expiry", "Có giá trị đến", false],
    ["father_name", "Họ tên cha", false],
    ["mother_name", "Họ tên mẹ", false],
    ["spouse_name", "Họ tên vợ/chồng", false],
  ];
  const FIELD_LABEL = Object.fromEntries(LABELS.map((x) => [x[0], x[1]]));

  const FILE_NAMES = {
    CardAccess: "thông tin truy cập", COM: "danh mục", SOD: "chữ ký số", DG1: "vùng MRZ",
    DG2: "ảnh chân dung", DG13: "thông tin công dân", DG14: "khóa chip", DG15: "khóa chip",
  };

  const BADGES = {
    verified: "Đã xác thực",
    not_verified: "Chưa xác thực",
    probable_clone: "Nghi thẻ giả (chip sao chép)",
    error: "Chưa xác thực",
  };

  const BHYT_TEXT = {
    valid: "Thẻ BHYT còn giá trị",
    valid_other_ministry: "Thẻ BHYT còn giá trị (thẻ của Bộ Quốc phòng/Bộ Công an)",
    replaced: "Thẻ BHYT đã được cấp thẻ mới",
    expired: "Thẻ BHYT đã hết hạn",
    not_found: "Không tìm thấy thông tin thẻ BHYT",
    wrong_name: "Họ tên không khớp với thẻ BHYT",
    wrong_dob: "Ngày sinh không khớp với thẻ BHYT",
    revoked: "Thẻ BHYT đã bị thu hồi",
    gateway_unavailable: "Cổng BHYT đang không trả lời",
    gateway_error: "Cổng BHYT báo lỗi",
    auth_error: "Tài khoản tra cứu BHYT bị từ chối",
    error: "Không tra cứu được thẻ BHYT",
  };

  const $ = (id) => document.getElementById(id);
  // seq: the event sequence number the identity on screen reflects (an event's seq,
  // or the X-Event-Seq of a GET /identity answer); readersSeq: the same for the
  // reader list. An answer older than an event already shown is dropped, never drawn
  // over it (the refresh on connect racing an identity_ready: issue 13).
  const state = { token: null, ws: null, readers: {}, readId: null, retry: 1000, seq: 0, readersSeq: 0 };
  const IDENTITY_EVENTS = new Set(["identity_ready", "verification", "lookup_started", "lookup_result",
                                   "intake_queued", "intake_result", "intake_delivered", "intake_failed",
                                   "identity_cleared"]);
  const READER_EVENTS = new Set(["reader_attached", "reader_detached", "card_present", "card_removed",
                                 "read_started"]);

  // ---- token ------------------------------------------------------------------
  function takeToken() {
    const hash = window.location.hash || "";
    const match = hash.match(/(?:^#|&)token=([A-Za-z0-9_\-]+)/);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, match[1]);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  // fetch + the X-Event-Seq of the answer: {data, seq}; errors are thrown with .seq
  async function apiSeq(method, path, body) {
    const opts = { method, headers: { Authorization: "Bearer " + state.token }, cache: "no-store" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    let data = null;
    const type = resp.headers.get("Content-Type") || "";
    if (type.startsWith("application/json")) data = await resp.json();
    const seq = Number(resp.headers.get("X-Event-Seq") || "0") || 0;
    if (!resp.ok) {
      const err = Object.assign({}, (data && data.error) || { message: "HTTP " + resp.status, hint: "" });
      err.seq = seq;
      throw err;
    }
    return { data, seq };
  }

  async function api(method, path, body) { return (await apiSeq(method, path, body)).data; }

  // ---- views --------------------------------------------------------------------
  function show(view) {
    for (const id of ["idle", "reading", "access", "result"]) $(id).hidden = id !== view;
  }

  function setText(id, text) { $(id).textContent = text == null ? "" : String(text); }

  function showError(err) {
    if (!err) { $("error").hidden = true; return; }
    setText("error-message", err.message || "Có lỗi xảy ra");
    setText("error-hint", err.hint || "");
    $("error").hidden = false;
  }

  function vnDate(iso) {
    if (!iso) return "";
    const m = String(iso).match(/^(\d{4})-(\d{2})-(\d{2})/);
    return m ? m[3] + "/" + m[2] + "/" + m[1] : String(iso);
  }

  function fieldValue(identity, name) {
    const value = identity[name];
    if (name === "sex") return identity.sex_label || "";
    // on the chip, no expiry date means the card does not expire (issued at 58 or later)
    if (name === "date_of_expiry" && !value && identity.date_of_issue) return "Không thời hạn";
    if (name.startsWith("date_")) return vnDate(value);
    return value == null ? "" : String(value);
  }

  function renderFields(identity) {
    const dl = $("fields");
    dl.replaceChildren();
    for (const [name, label, wide] of LABELS) {
      const value = fieldValue(identity, name);
      if (!value && ["old_id_number", "spouse_name", "father_name", "mother_name", "identifying_marks",
                     "religion"].includes(name)) continue;
      const dt = document.createElement("dt");
      dt.textContent = label;
      if (wide) dt.className = "wide";
      const dd = document.createElement("dd");
      dd.textContent = value || "—";
      dd.dataset.field = name;
      if (name === "full_name") dd.className = "name";
      if (identity.sources && identity.sources[name] === "qr") {
        const src = document.createElement("span");
        src.className = "src";
        src.textContent = "(từ mã QR)";
        dd.appendChild(src);
      }
      dl.append(dt, dd);
    }
  }

  function renderConflicts(conflicts) {
    const box = $("conflicts");
    if (!conflicts || !conflicts.length) { box.hidden = true; return; }
    const names = conflicts.map((c) => FIELD_LABEL[c.field] || c.field).join(", ");
    box.textContent = "Mã QR khác thông tin trong chip ở: " + names + ". Thông tin hiển thị là của chip.";
    box.hidden = false;
  }

  function renderBadge(verification) {
    const status = (verification && verification.status) || "error";
    const badge = $("badge");
    badge.className = "badge badge-" + (BADGES[status] ? status : "error");
    badge.dataset.status = status;
    badge.textContent = BADGES[status] || BADGES.error;
    setText("badge-reason", (verification && (verification.plain || verification.reason)) || "");
    // a chip that is probably a copy, or data altered after signing, is not sent on
    // as someone's dossier (the agent refuses it too: 409)
    const altered = !!(verification && verification.passive && verification.passive.status === "invalid");
    $("send").disabled = status === "probable_clone" || altered;
  }

  async function renderPhoto(current) {
    const img = $("photo");
    if (img.src && img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.removeAttribute("src");
    if (!current.has_photo) return;
    try {
      const resp = await fetch("/identity/photo.jpg", { headers: { Authorization: "Bearer " + state.token },
                                                         cache: "no-store" });
      if (!resp.ok || current.read_id !== state.readId) return;
      img.src = URL.createObjectURL(await resp.blob());
    } catch (e) { /* the photo is optional; the fields are shown anyway */ }
  }

  function renderLookup(lookup, pending) {
    const box = $("bhyt");
    const status = $("bhyt-status");
    const detail = $("bhyt-detail");
    if (!lookup && !pending) { box.hidden = true; return; }
    box.hidden = false;
    if (!lookup) {
      status.className = "bhyt-status wait";
      status.textContent = "Đang tra cứu thẻ BHYT…";
      detail.textContent = "";
      return;
    }
    const usable = lookup.usable === true || lookup.status === "valid";
    status.className = "bhyt-status " + (usable ? "ok" : "bad");
    status.dataset.status = lookup.status || "";
    status.textContent = BHYT_TEXT[lookup.status] || lookup.message_vi || BHYT_TEXT.error;
    const parts = [];
    if (lookup.card_code) parts.push("Mã thẻ: " + lookup.card_code);
    if (lookup.card_valid_from || lookup.card_valid_to) {
      parts.push("Hiệu lực từ " + vnDate(lookup.card_valid_from) + " đến " + vnDate(lookup.card_valid_to));
    }
    if (lookup.dob_matched === "full") parts.push("Khớp ngày sinh đầy đủ");
    else if (lookup.dob_matched === "year") parts.push("Chỉ khớp năm sinh");
    if (lookup.error && lookup.error.message) parts.push(lookup.error.message);
    else if (!usable && lookup.message_vi && BHYT_TEXT[lookup.status]) parts.push(lookup.message_vi);
    detail.textContent = parts.join(" · ");
  }

  function renderCurrent(current, lookupPending) {
    state.readId = current.read_id;
    renderBadge(current.verification);
    renderFields(current.identity || {});
    renderConflicts((current.identity || {}).conflicts);
    renderLookup(current.lookup, lookupPending);
    renderPhoto(current);
    setText("action-status", "");
    show("result");
  }

  function renderReaders() {
    const ul = $("readers");
    ul.replaceChildren();
    for (const [name, r] of Object.entries(state.readers)) {
      const li = document.createElement("li");
      li.className = "reader" + (r.busy ? " busy" : r.card ? " card" : "");
      li.textContent = name + (r.busy ? ": đang đọc" : r.card ? ": có thẻ" : ": sẵn sàng");
      ul.appendChild(li);
    }
  }

  function progress(ev) {
    const share = ev.total ? Math.min(100, Math.round((100 * ev.done) / ev.total)) : 0;
    $("progress-bar").style.width = share + "%";
    document.querySelector(".progress").setAttribute("aria-valuenow", String(share));
    const name = FILE_NAMES[ev.file] || ev.file;
    setText("progress-text", "Đang đọc " + name + ": " + ev.done + " / " + ev.total + " byte");
  }

  // ---- events -------------------------------------------------------------------
  function onEvent(ev) {
    const seq = Number(ev.seq) || 0;
    if (IDENTITY_EVENTS.has(ev.type)) {
      if (seq && seq <= state.seq) return;  // a GET /identity answer already reflected it
      state.seq = Math.max(state.seq, seq);
    }
    if (READER_EVENTS.has(ev.type)) {
      if (seq && seq <= state.readersSeq) return;
      state.readersSeq = Math.max(state.readersSeq, seq);
    }
    const r = ev.reader ? (state.readers[ev.reader] = state.readers[ev.reader] || {}) : null;
    switch (ev.type) {
      case "reader_attached": renderReaders(); break;
      case "reader_detached": delete state.readers[ev.reader]; renderReaders(); break;
      case "card_present": r.card = true; renderReaders(); showError(null); break;
      case "card_removed": r.card = false; r.busy = false; renderReaders(); break;
      case "read_started":
        r.busy = true; renderReaders(); showError(null);
        $("progress-bar").style.width = "0%"; setText("progress-text", ""); show("reading");
        break;
      case "read_progress": progress(ev); break;
      case "need_access":
        setText("access-message", ev.message || "Nhập 6 số cuối của số CCCD");
        show("access"); $("can").value = ""; $("can").focus();
        break;
      case "identity_ready": r.busy = false; renderReaders(); renderCurrent(ev, ev.lookup_pending); break;
      case "verification": if (ev.read_id === state.readId) renderBadge(ev); break;
      case "lookup_started": if (ev.read_id === state.readId) renderLookup(null, true); break;
      case "lookup_result": if (ev.read_id === state.readId) renderLookup(ev, false); break;
      case "intake_result": setText("action-status", "Đã gửi hồ sơ"); break;
      case "identity_cleared":
        if (ev.read_id === state.readId) { state.readId = null; clearView(); }
        break;
      case "error":
        if (r) { r.busy = false; renderReaders(); }
        showError(ev);
        if (!$("access").hidden || $("result").hidden) show($("access").hidden ? "idle" : "access");
        break;
      default: break;
    }
  }

  function clearView() {
    const img = $("photo");
    if (img.src && img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.removeAttribute("src");
    $("fields").replaceChildren();
    show("idle");
  }

  function setLink(ok) {
    const link = $("link");
    link.className = "link " + (ok ? "link-on" : "link-off");
    link.textContent = ok ? "Đã kết nối" : "Mất kết nối, đang thử lại…";
  }

  function connect() {
    const proto = window.location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(proto + window.location.host + "/events?shape=native");
    state.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "auth", token: state.token }));
    ws.onmessage = (msg) => {
      let ev;
      try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev.type === "hello") {
        // a new socket (perhaps to a restarted agent, whose seq starts again at 1):
        // order from here on only
        state.seq = 0; state.readersSeq = 0;
        setLink(true); state.retry = 1000; refresh(); return;
      }
      onEvent(ev);
    };
    ws.onclose = (e) => {
      setLink(false);
      if (e.code === 4401) { showError({ message: "Trang chưa được cấp quyền", hint: "Mở lại trang bằng đường dẫn agent in ra (có #token=...)." }); return; }
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  // What the agent holds now, after a (re)connect: events published while the socket
  // was down are lost. Each answer is applied only if no newer event was shown
  // meanwhile (its X-Event-Seq against state.seq / state.readersSeq).
  async function refresh() {
    await Promise.all([refreshReaders(), refreshIdentity()]);
  }

  async function refreshReaders() {
    try {
      const { data, seq } = await apiSeq("GET", "/readers");
      if (seq < state.readersSeq) return;
      state.readersSeq = seq;
      state.readers = {};
      for (const r of data.readers || []) {
        if (r.name) state.readers[r.name] = { card: !!r.card_present, busy: !!r.busy };
      }
      renderReaders();
    } catch (e) { showError(e); }
  }

  async function refreshIdentity() {
    let answer = null;
    try {
      answer = await apiSeq("GET", "/identity");
    } catch (e) {
      if (e.code !== "no_identity") { showError(e); return; }
      answer = { data: null, seq: e.seq || 0 };
    }
    if (answer.seq < state.seq) return;  // an event newer than this answer is on screen
    state.seq = answer.seq;
    if (answer.data) renderCurrent(answer.data, false);
    // dropped while the socket was down (its identity_cleared event was lost): what
    // the agent no longer holds leaves the screen too
    else if (state.readId !== null) { state.readId = null; clearView(); }
  }

  // ---- actions ------------------------------------------------------------------
  function wire() {
    $("can-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const can = $("can").value.trim();
      if (!/^[0-9]{6}$/.test(can)) {
        showError({ message: "Số CAN gồm đúng 6 chữ số", hint: "Là 6 số cuối của số CCCD in trên thẻ." });
        return;
      }
      try { showError(null); await api("POST", "/read", { can }); } catch (err) { showError(err); }
    });
    $("send").addEventListener("click", async () => {
      $("send").disabled = true;
      setText("action-status", "Đang gửi…");
      try { await api("POST", "/intake"); setText("action-status", "Đã gửi hồ sơ"); }
      catch (err) { $("send").disabled = false; setText("action-status", ""); showError(err); }
    });
    $("clear").addEventListener("click", async () => {
      try { await api("DELETE", "/identity"); } catch (err) { showError(err); }
      state.readId = null;
      clearView();
      showError(null);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    state.token = takeToken();
    wire();
    show("idle");
    if (!state.token) {
      setLink(false);
      showError({ message: "Trang chưa được cấp quyền", hint: "Mở trang bằng đường dẫn agent in ra (có #token=...)." });
      return;
    }
    connect();
  });
})();
