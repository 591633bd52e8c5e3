// Counter page of the idagent desk agent.
// Security: every value from the card, the QR or the gateway is written with
// textContent (never innerHTML), so a payload holding HTML stays text. The API token
// comes from the URL fragment (#token=...), which the browser never sends to the
// server; it is moved to sessionStorage and removed from the address bar at once.
// Words: every text the clerk reads comes from text.js (Vietnamese); the API's
// English messages are never shown (they go to the browser console for IT).
"use strict";

(function () {
  const TOKEN_KEY = "idagent.token";
  const T = window.IDAGENT_TEXT;

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
  const OPTIONAL = ["old_id_number", "spouse_name", "father_name", "mother_name", "identifying_marks", "religion"];

  //: typical sizes (bytes) of a CCCD chip's files, counted until a file's real length
  //: is known, so that one bar covers the whole read (measured on the synthetic card:
  //: COM 26, SOD 1692, DG14 126, DG1 95, DG2 16995, DG13 425, DG15 165)
  const TYPICAL_SIZE = { COM: 30, SOD: 1700, DG14: 300, DG1: 95, DG2: 17000, DG13: 600, DG15: 200 };

  const $ = (id) => document.getElementById(id);
  // seq: the event sequence number the identity on screen reflects (an event's seq,
  // or the X-Event-Seq of a GET /identity answer); readersSeq: the same for the
  // reader list. An answer older than an event already shown is dropped, never drawn
  // over it (the refresh on connect racing an identity_ready: issue 13).
  const state = {
    token: null, ws: null, readers: {}, readId: null, retry: 1000, seq: 0, readersSeq: 0,
    current: null, health: null, files: {}, shown: 0, lastReader: null,
  };
  const IDENTITY_EVENTS = new Set(["identity_ready", "verification", "lookup_started", "lookup_result",
                                   "intake_result", "intake_status", "identity_cleared", "wedge_result"]);
  const READER_EVENTS = new Set(["reader_attached", "reader_detached", "card_present", "card_removed",
                                 "read_started"]);

  // ---- token and API ----------------------------------------------------------------
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
      const err = Object.assign({}, (data && data.error) || { code: "http_" + resp.status, message: "HTTP " + resp.status });
      err.seq = seq;
      throw err;
    }
    return { data, seq };
  }

  async function api(method, path, body) { return (await apiSeq(method, path, body)).data; }

  // ---- small helpers ----------------------------------------------------------------
  function show(view) {
    for (const id of ["idle", "reading", "access", "result"]) $(id).hidden = id !== view;
  }

  function setText(id, text) { $(id).textContent = text == null ? "" : String(text); }

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (_m, name) => (values[name] == null ? "" : String(values[name])));
  }

  // An error from the API or an "error" event, in the clerk's words (by its code); the
  // English message goes to the console for IT, never to the screen.
  function showError(err) {
    if (!err) { $("error").hidden = true; return; }
    if (err.message && !err.clerk) console.info("idagent:", err.code || "", err.message);
    const code = String(err.code || "");
    const words = err.clerk || T.ERRORS[code] || (code.startsWith("bhyt_") ? [T.BHYT.error, T.BHYT_HINT.error]
                                                                            : T.ERROR_DEFAULT);
    setText("error-message", words[0]);
    setText("error-hint", words[1] || "");
    $("error").dataset.code = code;
    $("error").hidden = false;
  }

  function vnDate(iso) {
    if (!iso) return "";
    const m = String(iso).match(/^(\d{4})-(\d{2})-(\d{2})/);
    return m ? m[3] + "/" + m[2] + "/" + m[1] : String(iso);
  }

  function definition(dl, label, value, field) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    if (field) dd.dataset.field = field;
    dl.append(dt, dd);
    return [dt, dd];
  }

  // ---- the identity -----------------------------------------------------------------
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
      if (!value && OPTIONAL.includes(name)) continue;
      const [dt, dd] = definition(dl, label, value || "—", name);
      if (wide) dt.className = "wide";
      if (name === "full_name") dd.className = "name";
      if (identity.sources && identity.sources[name] === "qr") {
        const src = document.createElement("span");
        src.className = "src";
        src.textContent = "(từ mã QR)";
        dd.appendChild(src);
      }
    }
  }

  function renderConflicts(conflicts) {
    const box = $("conflicts");
    if (!conflicts || !conflicts.length) { box.hidden = true; return; }
    const names = conflicts.map((c) => FIELD_LABEL[c.field] || c.field).join(", ");
    box.textContent = "Mã QR khác thông tin trong chip ở: " + names + ". Thông tin hiển thị là của chip.";
    box.hidden = false;
  }

  // ---- one verdict per card -----------------------------------------------------------
  // kind: verified | probable_clone | altered | untrusted | unchecked | chip_unproven | error
  function verdictOf(verification) {
    const v = verification || {};
    const status = v.status || "error";
    const passive = (v.passive || {}).status;
    if (status === "verified") return "verified";
    if (status === "probable_clone") return "probable_clone";
    if (passive === "invalid") return "altered";  // the agent refuses its intake and its BHYT lookup
    if (passive === "untrusted") return "untrusted";
    if (passive === "error" || passive === "not_checked") return "unchecked";
    if (passive === "valid") return "chip_unproven";
    return status === "not_verified" ? "unknown" : "error";
  }

  function refused(kind) { return kind === "probable_clone" || kind === "altered"; }

  function renderBadge(verification) {
    const kind = verdictOf(verification);
    const words = T.VERDICTS[kind] || [T.VERDICTS.error[0], (verification && verification.plain) || "", ""];
    const badge = $("badge");
    badge.className = "badge badge-" + kind;
    badge.dataset.status = (verification && verification.status) || "error";
    badge.dataset.verdict = kind;
    badge.textContent = words[0];
    setText("badge-reason", words[1]);
    setText("badge-action", words[2]);
    $("badge-action").hidden = !words[2];
    if (state.current) state.current.verification = verification;
    renderSend();
    renderLookup();
    renderWedge();
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

  // ---- BHYT ---------------------------------------------------------------------------
  function renderLookup() {
    const cur = state.current;
    const box = $("bhyt");
    if (!cur) { box.hidden = true; return; }
    const kind = verdictOf(cur.verification);
    const lookup = cur.lookup;
    const status = $("bhyt-status");
    const hint = $("bhyt-hint");
    const dl = $("bhyt-fields");
    dl.replaceChildren();
    hint.textContent = "";
    box.className = "bhyt";
    if (kind === "altered" && (cur.lookupPending || lookup || state.health === null || state.health.bhyt)) {
      // the agent does not send a lookup for data that fail their signature
      box.hidden = false;
      status.className = "bhyt-status bad";
      status.dataset.status = "skipped";
      status.textContent = T.BHYT.skipped;
      hint.textContent = T.BHYT_HINT.skipped;
      return;
    }
    if (!lookup && !cur.lookupPending) { box.hidden = true; return; }
    box.hidden = false;
    if (!lookup) {
      status.className = "bhyt-status wait";
      status.dataset.status = "pending";
      status.textContent = T.BHYT.pending;
      return;
    }
    const usable = lookup.usable === true || lookup.status === "valid";
    const untrusted = kind === "probable_clone";
    box.className = "bhyt" + (untrusted ? " untrusted" : "");
    status.className = "bhyt-status " + (untrusted ? "untrusted" : usable ? "ok" : "bad");
    status.dataset.status = untrusted ? "untrusted" : (lookup.status || "");
    const said = T.BHYT[lookup.status] || T.BHYT.error;
    status.textContent = untrusted ? T.BHYT.untrusted + " (" + said.charAt(0).toLowerCase() + said.slice(1) + ")" : said;
    if (untrusted) hint.textContent = T.BHYT_HINT.untrusted;
    else if (T.BHYT_HINT[lookup.status]) hint.textContent = T.BHYT_HINT[lookup.status];
    else if (lookup.error && lookup.error.code) hint.textContent = T.BHYT_HINT.error;
    renderBhytFields(dl, lookup, usable || lookup.card_code);
  }

  function renderBhytFields(dl, lookup, any) {
    if (!any) return;
    if (lookup.card_code) definition(dl, "Mã thẻ", lookup.card_code, "bhyt_card_code");
    const from = vnDate(lookup.card_valid_from || lookup.valid_from);
    const to = vnDate(lookup.card_valid_to || lookup.valid_to);
    if (from || to) definition(dl, "Hạn thẻ", (from || "?") + " – " + (to || "?"), "bhyt_validity");
    if (lookup.facility_code) definition(dl, "Nơi ĐK KCB ban đầu", lookup.facility_code, "bhyt_facility");
    if (lookup.five_years_from) definition(dl, "Đủ 5 năm liên tục từ", vnDate(lookup.five_years_from), "bhyt_five_years");
    const sent = lookup.dob_sent || [];
    let dob = null;
    if (lookup.dob_matched === "full") {
      dob = "đủ ngày, tháng, năm" + (sent[0] ? " (" + vnDate(sent[0]) + ")" : "");
    } else if (lookup.dob_matched === "year") {
      const year = sent.length ? String(sent[sent.length - 1]).slice(0, 4) : "";
      const held = lookup.insurance_dob ? "; thẻ BHYT ghi " + lookup.insurance_dob : "";
      dob = "chỉ năm sinh" + (year ? " (" + year + ")" : "") + held;
    }
    if (dob) definition(dl, "Ngày sinh khớp", dob, "bhyt_dob")[0].className = "wide";
  }

  // ---- "Gửi hồ sơ": queued → delivered (receipt) → failed (retry) ----------------------
  function renderSend() {
    const cur = state.current;
    const button = $("send");
    const why = $("send-why");
    const status = $("action-status");
    why.textContent = "";
    status.className = "action-status";
    if (!cur) return;
    const kind = verdictOf(cur.verification);
    const intake = cur.intake || {};
    button.textContent = intake.status === "failed" ? T.INTAKE.resend : T.INTAKE.send;
    if (refused(kind)) {
      button.disabled = true;
      const err = T.ERRORS[kind === "altered" ? "altered_data" : "probable_clone"];
      why.textContent = err[0] + ". " + err[1];
      status.textContent = "";
      return;
    }
    if (state.health && state.health.intake === false) {
      button.disabled = true;
      why.textContent = T.INTAKE.not_configured;
      return;
    }
    button.disabled = ["sending", "queued", "retrying", "delivered"].includes(intake.status);
    status.dataset.status = intake.status || "";
    if (intake.status === "delivered") {
      status.className = "action-status ok";
      status.textContent = intake.receipt ? fill(T.INTAKE.delivered, { receipt: intake.receipt })
                                          : T.INTAKE.delivered_no_receipt;
    } else if (intake.status === "failed") {
      status.className = "action-status bad";
      status.textContent = T.INTAKE.failed;
    } else if (intake.status === "retrying") {
      status.className = "action-status warn";
      status.textContent = fill(T.INTAKE.retrying, { n: intake.attempts || 1 });
    } else if (intake.status === "queued" || intake.status === "sending") {
      status.textContent = T.INTAKE[intake.status];
    } else {
      status.textContent = "";
    }
  }

  // ---- "Gõ vào ứng dụng" (keyboard wedge): shown when the agent has it on, usable
  // for a verified read only; the agent types only on this click (or its hotkey) ------------
  function renderWedge() {
    const row = $("wedge-row");
    const cur = state.current;
    const on = !!(state.health && state.health.wedge);
    row.hidden = !on || !cur;
    if (row.hidden) return;
    const verified = verdictOf(cur.verification) === "verified";
    const result = cur.wedge || {};
    const button = $("wedge");
    const status = $("wedge-status");
    button.disabled = !verified || result.status === "typing";
    status.className = "action-status";
    status.dataset.status = result.status || "";
    status.dataset.code = result.code || "";
    if (!verified) {
      status.textContent = T.WEDGE.only_verified;
    } else if (result.status === "typing") {
      status.textContent = T.WEDGE.typing;
    } else if (result.status === "typed") {
      status.className = "action-status ok";
      status.textContent = fill(T.WEDGE.typed, { window: result.window || "" });
    } else if (result.status === "refused") {
      status.className = "action-status bad";
      status.textContent = T.WEDGE.refused[result.code] || T.WEDGE.refused_default;
    } else {
      status.textContent = "";
    }
  }

  function setWedge(readId, result) {
    if (!state.current || readId !== state.readId) return;
    state.current.wedge = result;
    renderWedge();
  }

  function setIntake(readId, intake) {
    if (!state.current || readId !== state.readId) return;
    state.current.intake = Object.assign({}, state.current.intake || {}, intake);
    renderSend();
  }

  function renderCurrent(current, lookupPending) {
    state.readId = current.read_id;
    state.lastReader = current.reader || state.lastReader;
    state.current = {
      read_id: current.read_id, verification: current.verification, lookup: current.lookup,
      lookupPending: !!lookupPending, intake: current.intake || null, wedge: null,
    };
    renderFields(current.identity || {});
    renderConflicts((current.identity || {}).conflicts);
    renderBadge(current.verification);
    renderPhoto(current);
    showError(null);
    show("result");
  }

  // ---- readers --------------------------------------------------------------------------
  function renderReaders() {
    const ul = $("readers");
    ul.replaceChildren();
    for (const [name, r] of Object.entries(state.readers)) {
      const li = document.createElement("li");
      li.className = "reader" + (r.busy ? " busy" : r.card ? " card" : "");
      li.textContent = name + ": " + (r.busy ? T.READER.busy : r.card ? T.READER.card : T.READER.ready);
      ul.appendChild(li);
    }
    renderIdle();
  }

  // "Xóa" while the card still lies on the reader: offer to read it again
  function renderIdle() {
    const reader = state.lastReader && state.readers[state.lastReader];
    $("still-there").hidden = !(reader && reader.card && !reader.busy);
  }

  // ---- progress: one bar for the whole read -----------------------------------------------
  function startProgress() {
    state.files = {};
    state.shown = 0;
    $("progress-bar").style.width = "0%";
    document.querySelector(".progress").setAttribute("aria-valuenow", "0");
    setText("progress-text", T.STEPS.COM);
  }

  function progress(ev) {
    state.files[ev.file] = { done: Number(ev.done) || 0, total: Number(ev.total) || 0 };
    let done = 0;
    let total = 0;
    for (const [name, size] of Object.entries(TYPICAL_SIZE)) {
      if (!state.files[name]) total += size;
    }
    for (const f of Object.values(state.files)) { done += Math.min(f.done, f.total); total += f.total; }
    // never backwards: a file longer than its typical size must not pull the bar back
    const share = Math.max(state.shown, total ? Math.min(99, Math.floor((100 * done) / total)) : 0);
    state.shown = share;
    $("progress-bar").style.width = share + "%";
    document.querySelector(".progress").setAttribute("aria-valuenow", String(share));
    const finished = ev.file === "DG15" && ev.done >= ev.total;
    setText("progress-text", finished ? T.STEPS.checking : (T.STEPS[ev.file] || T.STEPS.other));
  }

  // ---- events ---------------------------------------------------------------------------
  function fresh(ev) {
    const seq = Number(ev.seq) || 0;
    if (IDENTITY_EVENTS.has(ev.type)) {
      if (seq && seq <= state.seq) return false;  // a GET /identity answer already reflected it
      state.seq = Math.max(state.seq, seq);
    }
    if (READER_EVENTS.has(ev.type)) {
      if (seq && seq <= state.readersSeq) return false;
      state.readersSeq = Math.max(state.readersSeq, seq);
    }
    return true;
  }

  function onEvent(ev) {
    if (!fresh(ev)) return;
    const r = ev.reader ? (state.readers[ev.reader] = state.readers[ev.reader] || {}) : null;
    const mine = ev.read_id != null && ev.read_id === state.readId;
    switch (ev.type) {
      case "reader_attached": renderReaders(); break;
      case "reader_detached": delete state.readers[ev.reader]; renderReaders(); break;
      case "card_present": r.card = true; renderReaders(); showError(null); break;
      case "card_removed": r.card = false; r.busy = false; renderReaders(); break;
      case "read_started":
        r.busy = true; state.lastReader = ev.reader; renderReaders(); showError(null);
        startProgress(); show("reading");
        break;
      case "read_progress": if ($("reading").hidden) show("reading"); progress(ev); break;
      case "need_access":
        if (r) { r.busy = false; renderReaders(); }
        setText("access-message", T.ACCESS[ev.reason] || T.ACCESS.no_key);
        if (ev.reason === "key_refused") showError(null);  // the prompt itself says so now
        show("access"); $("can").value = ""; $("can").focus();
        break;
      case "identity_ready": r.busy = false; renderReaders(); renderCurrent(ev, ev.lookup_pending); break;
      case "verification": if (mine) renderBadge(ev); break;
      case "lookup_started": if (mine) { state.current.lookupPending = true; renderLookup(); } break;
      case "lookup_result":
        if (mine) { state.current.lookup = ev; state.current.lookupPending = false; renderLookup(); }
        break;
      case "intake_result": case "intake_status": setIntake(ev.read_id, ev); break;
      case "wedge_result": setWedge(ev.read_id, ev); break;
      case "identity_cleared": if (mine) { state.readId = null; clearView(); } break;
      case "error":
        if (r) { r.busy = false; renderReaders(); }
        showError(ev);
        if (!$("reading").hidden) show("idle");
        break;
      default: break;
    }
  }

  function clearView() {
    const img = $("photo");
    if (img.src && img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.removeAttribute("src");
    $("fields").replaceChildren();
    state.current = null;
    show("idle");
    renderIdle();
  }

  function setLink(ok) {
    const link = $("link");
    link.className = "link " + (ok ? "link-on" : "link-off");
    link.textContent = ok ? T.LINK_ON : T.LINK_OFF;
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
      if (e.code === 4401) { showError({ clerk: T.NO_RIGHT, code: "no_token" }); return; }
      setTimeout(connect, state.retry);
      state.retry = Math.min(state.retry * 2, 10000);
    };
  }

  // What the agent holds now, after a (re)connect: events published while the socket
  // was down are lost. Each answer is applied only if no newer event was shown
  // meanwhile (its X-Event-Seq against state.seq / state.readersSeq).
  async function refresh() {
    await Promise.all([refreshHealth(), refreshReaders(), refreshIdentity()]);
  }

  async function refreshHealth() {
    try {
      const health = await api("GET", "/health");
      state.health = { intake: health.intake !== false, bhyt: health.bhyt !== false,
                       wedge: !!(health.wedge && health.wedge.enabled) };
      if (state.current) { renderSend(); renderLookup(); renderWedge(); }
    } catch (e) { state.health = null; }
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

  // ---- actions --------------------------------------------------------------------------
  function wire() {
    $("can-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const can = $("can").value.trim();
      if (!/^[0-9]{6}$/.test(can)) {
        showError({ clerk: T.ACCESS.bad_input, code: "bad_input" });
        return;
      }
      try { showError(null); await api("POST", "/read", { can }); } catch (err) { showError(err); }
    });
    $("send").addEventListener("click", async () => {
      const readId = state.readId;
      setIntake(readId, { status: "sending" });
      try {
        const receipt = await api("POST", "/intake");
        // the answer says "queued"; a delivery event may already have said more
        if (state.current && readId === state.readId && state.current.intake.status === "sending") {
          setIntake(readId, receipt);
        }
      } catch (err) {
        setIntake(readId, { status: null });
        showError(err);
      }
    });
    $("wedge").addEventListener("click", async () => {
      const readId = state.readId;
      setWedge(readId, { status: "typing" });
      try {
        setWedge(readId, await api("POST", "/wedge/type"));
      } catch (err) {
        if (err.message) console.info("idagent:", err.code || "", err.message);
        setWedge(readId, { status: "refused", code: err.code });
      }
    });
    $("clear").addEventListener("click", async () => {
      try { await api("DELETE", "/identity"); } catch (err) { showError(err); }
      state.readId = null;
      clearView();
      showError(null);
    });
    $("reread").addEventListener("click", async () => {
      try { showError(null); await api("POST", "/read/again", { reader: state.lastReader }); }
      catch (err) { showError(err); }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    state.token = takeToken();
    wire();
    show("idle");
    if (!state.token) {
      setLink(false);
      showError({ clerk: T.NO_RIGHT, code: "no_token" });
      return;
    }
    connect();
  });
})();
