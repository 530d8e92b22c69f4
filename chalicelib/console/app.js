// The OpenCTS console: plain JavaScript over the signed CTS v3 API, no build step.
"use strict";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const SESSION = "opencts.console.session";
const HOUR_MS = 3600 * 1000;
const RANGES = { "1h": HOUR_MS, "1d": 24 * HOUR_MS, "7d": 7 * 24 * HOUR_MS };

// The API sits next to the console: /console -> "", /api/console (an API Gateway stage) -> /api.
const API_PREFIX = location.pathname.replace(/\/console\/?.*$/, "");

const state = {
  session: JSON.parse(sessionStorage.getItem(SESSION) || "null"),
  markers: [null], // markers[i] is the marker that loads page i
  page: 0,
  query: null,
  traces: [],
};

// -- API -------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body && body.error_msg ? `${body.error_code}: ${body.error_msg}` : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, { params = {}, body = null, raw = false } = {}) {
  const { access_key_id: accessKeyId, secret } = state.session;
  const pairs = [];
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") pairs.push([name, value]);
  }
  const text = body === null ? "" : JSON.stringify(body);
  const headers = await window.OpenCtsSigner.signRequest({
    accessKeyId, secret, method, host: location.host, path, pairs, body: text,
  });
  const query = window.OpenCtsSigner.queryString(pairs);
  const response = await fetch(API_PREFIX + path + (query ? "?" + query : ""), {
    method, headers, body: text || undefined,
  });
  if (raw && response.ok) return response;
  const content = await response.text();
  let parsed = null;
  try { parsed = content ? JSON.parse(content) : null; } catch { parsed = null; }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

const project = () => encodeURIComponent(state.session.project_id);

function show(message, kind = "info") {
  const box = $("#message");
  box.textContent = message;
  box.className = kind;
  box.hidden = !message;
}

async function guarded(action) {
  try {
    show("");
    await action();
  } catch (error) {
    show(error.message || String(error), "error");
  }
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "onclick") node.addEventListener("click", () => guarded(value));
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function formatTime(ms) {
  return ms ? new Date(ms).toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC") : "";
}

// -- pages -----------------------------------------------------------------------------------------
function showPage(name) {
  const signedIn = Boolean(state.session);
  const page = signedIn ? name || "traces" : "signin";
  $$(".page").forEach((section) => { section.hidden = section.id !== `page-${page}`; });
  $$("#nav a").forEach((link) => link.classList.toggle("active", link.dataset.page === page));
  $("#nav").hidden = !signedIn;
  if (signedIn) {
    $("#whoami").textContent = `${state.session.access_key_id} · ${state.session.project_id}`;
  }
  const loaders = { traces: loadTracePage, trackers: loadTrackers, notifications: loadNotifications };
  if (loaders[page]) guarded(loaders[page]);
}

function route() {
  showPage(location.hash.replace("#", ""));
}

async function signIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const session = {
    project_id: form.get("project_id").trim(),
    access_key_id: form.get("access_key_id").trim(),
    secret: form.get("secret"),
  };
  state.session = session;
  try {
    await api("GET", `/v3/${project()}/trackers`);
  } catch (error) {
    state.session = null;
    throw error;
  }
  sessionStorage.setItem(SESSION, JSON.stringify(session));
  event.target.reset();
  location.hash = "#traces";
  route();
}

function signOut() {
  sessionStorage.removeItem(SESSION);
  state.session = null;
  location.hash = "";
  route();
}

// -- Trace List ------------------------------------------------------------------------------------
let catalog = [];

async function loadTracePage() {
  const [operations, users, trackers] = await Promise.all([
    api("GET", `/v3/${project()}/operations`),
    api("GET", `/v3/${project()}/user-resources`),
    api("GET", `/v3/${project()}/trackers`, { params: { tracker_type: "data" } }),
  ]);
  catalog = operations.operations;
  const form = $("#trace-filters");
  fillSelect(form.service_type, "All trace sources", [...new Set(catalog.map((o) => o.service_type))]);
  fillResourceTypes();
  fillSelect(form.user, "All operators", users.users.map((u) => u.name));
  fillSelect(form.tracker_name, null, trackers.trackers.map((t) => t.tracker_name));
  await queryTraces(true);
}

function fillSelect(select, allLabel, values) {
  const current = select.value;
  select.replaceChildren();
  if (allLabel !== null) select.append(element("option", { value: "", text: allLabel }));
  for (const value of values) select.append(element("option", { value, text: value }));
  if (values.includes(current)) select.value = current;
}

function fillResourceTypes() {
  const form = $("#trace-filters");
  const service = form.service_type.value;
  const types = catalog.filter((o) => !service || o.service_type === service).map((o) => o.resource_type);
  fillSelect(form.resource_type, "All resource types", [...new Set(types)]);
}

function toggleDependents(form) {
  $$("[data-for]", form).forEach((node) => {
    const wanted = node.dataset.for;
    const fields = Array.from(form.elements);
    node.hidden = !fields.some((field) =>
      (field.tagName === "SELECT" && field.value === wanted));
  });
}

function traceParams() {
  const form = $("#trace-filters");
  const now = Date.now();
  const params = { trace_type: form.trace_type.value, limit: 20 };
  if (form.range.value === "custom") {
    params.from = form.from.value ? new Date(form.from.value).getTime() : now - HOUR_MS;
    params.to = form.to.value ? new Date(form.to.value).getTime() : now;
  } else {
    params.from = now - RANGES[form.range.value];
    params.to = now;
  }
  if (params.trace_type === "data") params.tracker_name = form.tracker_name.value;
  for (const name of ["service_type", "resource_type", "user", "trace_rating"]) {
    if (form[name].value) params[name] = form[name].value;
  }
  const value = form.search_value.value.trim();
  if (value) params[form.search_by.value] = value;
  return params;
}

async function queryTraces(fresh) {
  if (fresh || !state.query) {
    state.query = traceParams();
    state.markers = [null];
    state.page = 0;
  }
  const params = { ...state.query, next: state.markers[state.page] };
  const reply = await api("GET", `/v3/${project()}/traces`, { params });
  state.traces = reply.traces;
  state.markers[state.page + 1] = reply.meta_data.marker;
  renderTraces();
}

function renderTraces() {
  const body = $("#trace-table tbody");
  body.replaceChildren();
  if (!state.traces.length) {
    body.append(element("tr", {}, element("td", { colspan: "10", class: "muted", text: "No traces found." })));
  }
  for (const trace of state.traces) {
    const row = element("tr", { "data-trace-id": trace.trace_id });
    const expand = element("button", { type: "button", class: "expand", "aria-label": "Expand", text: "▸" });
    const view = element("button", { type: "button", class: "view", text: "View Trace" });
    row.append(
      element("td", {}, expand),
      element("td", { text: trace.trace_name }),
      element("td", { text: trace.resource_type || "" }),
      element("td", { text: trace.service_type }),
      element("td", { text: trace.resource_id || "" }),
      element("td", { text: trace.resource_name || "" }),
      element("td", { class: `rating-${trace.trace_rating}`, text: trace.trace_rating }),
      element("td", { text: (trace.user && trace.user.name) || "" }),
      element("td", { text: formatTime(trace.time) }),
      element("td", {}, view),
    );
    const details = element("tr", { class: "details", hidden: "" }, element("td", { colspan: "10" }, detailList(trace)));
    expand.addEventListener("click", () => {
      details.hidden = !details.hidden;
      expand.textContent = details.hidden ? "▸" : "▾";
    });
    view.addEventListener("click", () => {
      $("#trace-json").textContent = JSON.stringify(trace, null, 2);
      $("#trace-dialog").showModal();
    });
    body.append(row, details);
  }
  $("#trace-page").textContent = `Page ${state.page + 1}`;
  $("#trace-prev").disabled = state.page === 0;
  $("#trace-next").disabled = !state.markers[state.page + 1];
}

function detailList(trace) {
  const list = element("dl", { class: "trace-details" });
  const fields = ["trace_id", "trace_type", "source_ip", "request_id", "code", "api_version",
    "record_time", "endpoint", "resource_url", "message"];
  for (const name of fields) {
    if (trace[name] === undefined || trace[name] === null || trace[name] === "") continue;
    const value = name === "record_time" ? formatTime(trace[name]) : String(trace[name]);
    list.append(element("dt", { text: name }), element("dd", { text: value }));
  }
  return list;
}

async function exportTraces() {
  const params = { ...traceParams() };
  delete params.limit;
  const response = await api("GET", `/v3/${project()}/traces/export`, { params, raw: true });
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const name = (disposition.match(/filename="([^"]+)"/) || [])[1] || "traces.csv";
  const link = element("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  show(`Exported ${name}`);
}

// -- Tracker List ----------------------------------------------------------------------------------
let trackers = [];
let editing = null;

async function loadTrackers() {
  const reply = await api("GET", `/v3/${project()}/trackers`);
  trackers = reply.trackers;
  const body = $("#tracker-table tbody");
  body.replaceChildren();
  for (const tracker of trackers) {
    const obs = tracker.obs_info || {};
    const transfer = obs.bucket_name ? `s3://${obs.bucket_name}/${obs.file_prefix_name || ""}` : "Not configured";
    const enabled = tracker.status !== "disabled";
    const status = tracker.status + (tracker.detail ? ` (${tracker.detail})` : "");
    const digest = tracker.integrity || {};
    const integrity = !tracker.is_support_validate ? "Off"
      : digest.last_digest_time ? `${digest.status} · last digest ${formatTime(digest.last_digest_time)}`
        : "No digest yet";
    const tags = (tracker.tags || []).map((t) => `${t.key}=${t.value}`).join(", ");
    body.append(element("tr", { "data-tracker": tracker.tracker_name },
      element("td", { text: tracker.tracker_name }),
      element("td", { text: tracker.tracker_type }),
      element("td", { class: "status", text: status }),
      element("td", { text: transfer }),
      element("td", { class: "integrity", text: integrity, title: digest.last_digest || "" }),
      element("td", { class: "tags", text: tags }),
      element("td", {},
        element("button", { type: "button", class: "configure", onclick: () => editTracker(tracker), text: "Configure" }),
        element("button", { type: "button", class: "toggle", onclick: () => setTrackerStatus(tracker, !enabled), text: enabled ? "Disable" : "Enable" }),
        element("button", { type: "button", class: "tag", onclick: () => editTags(tracker), text: "Tags" }),
        element("button", { type: "button", class: "delete", onclick: () => deleteTracker(tracker), text: "Delete" })),
    ));
  }
}

function editTracker(tracker) {
  editing = tracker;
  const form = $("#tracker-form");
  form.reset();
  $("#tracker-form-title").textContent = tracker ? `Configure ${tracker.tracker_name}` : "Create Tracker";
  form.tracker_type.disabled = Boolean(tracker);
  form.tracker_name.disabled = Boolean(tracker);
  form.data_bucket_name.disabled = Boolean(tracker);
  if (tracker) {
    const obs = tracker.obs_info || {};
    form.tracker_type.value = tracker.tracker_type;
    form.tracker_name.value = tracker.tracker_name;
    form.data_bucket_name.value = (tracker.data_bucket || {}).data_bucket_name || "";
    const events = (tracker.data_bucket || {}).data_event || [];
    form.event_read.checked = events.includes("READ");
    form.event_write.checked = events.includes("WRITE");
    form.transfer.checked = Boolean(obs.bucket_name);
    form.bucket_name.value = obs.bucket_name || "";
    form.file_prefix_name.value = obs.file_prefix_name || "";
    form.compress_type.value = obs.compress_type || "gzip";
    form.is_sort_by_service.checked = obs.is_sort_by_service !== false;
    form.bucket_lifecycle.value = obs.bucket_lifecycle || "";
    form.is_support_validate.checked = Boolean(tracker.is_support_validate);
    form.is_support_trace_files_encryption.checked = Boolean(tracker.is_support_trace_files_encryption);
    form.kms_id.value = tracker.kms_id || "";
    form.is_lts_enabled.checked = Boolean((tracker.lts || {}).is_lts_enabled);
  }
  toggleDependents(form);
  form.hidden = false;
}

function trackerBody(form) {
  const type = form.tracker_type.value;
  const body = { tracker_type: type, tracker_name: type === "system" ? "system" : form.tracker_name.value.trim() };
  if (form.transfer.checked) {
    body.obs_info = {
      bucket_name: form.bucket_name.value.trim(),
      file_prefix_name: form.file_prefix_name.value.trim(),
      compress_type: form.compress_type.value,
      is_sort_by_service: form.is_sort_by_service.checked,
    };
    if (type === "data" && form.bucket_lifecycle.value) {
      body.obs_info.bucket_lifecycle = Number(form.bucket_lifecycle.value);
    }
  }
  body.is_lts_enabled = form.is_lts_enabled.checked;
  body.is_support_validate = form.is_support_validate.checked;
  body.is_support_trace_files_encryption = form.is_support_trace_files_encryption.checked;
  if (form.is_support_trace_files_encryption.checked) body.kms_id = form.kms_id.value.trim();
  if (type === "data" && !editing) {
    const events = [];
    if (form.event_read.checked) events.push("READ");
    if (form.event_write.checked) events.push("WRITE");
    body.data_bucket = { data_bucket_name: form.data_bucket_name.value.trim(), data_event: events };
  }
  return body;
}

async function saveTracker(event) {
  event.preventDefault();
  const form = event.target;
  const body = trackerBody(form);
  if (editing) await api("PUT", `/v3/${project()}/tracker`, { body });
  else await api("POST", `/v3/${project()}/tracker`, { body });
  form.hidden = true;
  show(`Tracker ${body.tracker_name} saved`);
  await loadTrackers();
}

async function setTrackerStatus(tracker, enable) {
  await api("PUT", `/v3/${project()}/tracker`, {
    body: { tracker_type: tracker.tracker_type, tracker_name: tracker.tracker_name, status: enable ? "enabled" : "disabled" },
  });
  await loadTrackers();
}

async function deleteTracker(tracker) {
  if (!confirm(`Delete tracker ${tracker.tracker_name}? Its traces stay queryable.`)) return;
  await api("DELETE", `/v3/${project()}/trackers`, {
    params: { tracker_name: tracker.tracker_name, tracker_type: tracker.tracker_type },
  });
  show(`Tracker ${tracker.tracker_name} deleted`);
  await loadTrackers();
}

let tagging = null;

function editTags(tracker) {
  tagging = tracker;
  $("#tag-tracker").textContent = tracker.tracker_name;
  renderTags();
  $("#tag-form").hidden = false;
}

function renderTags() {
  const list = $("#tag-list");
  list.replaceChildren();
  for (const tag of tagging.tags || []) {
    list.append(element("li", {}, `${tag.key}=${tag.value} `,
      element("button", { type: "button", onclick: () => changeTag("delete", tag), text: "Remove" })));
  }
}

async function changeTag(action, tag) {
  const method = action === "create" ? "POST" : "DELETE";
  await api(method, `/v3/${project()}/cts-tracker/${encodeURIComponent(tagging.id)}/tags/${action}`, {
    body: { tags: [tag] },
  });
  await loadTrackers();
  tagging = trackers.find((t) => t.tracker_name === tagging.tracker_name) || tagging;
  renderTags();
}

async function addTag(event) {
  event.preventDefault();
  const form = event.target;
  await changeTag("create", { key: form.key.value, value: form.value.value });
  form.key.value = "";
  form.value.value = "";
}

// -- Key Event Notifications -----------------------------------------------------------------------
let notifications = [];
let editingNotification = null;
let testing = null;

async function loadNotifications() {
  const [smn, fun] = await Promise.all([
    api("GET", `/v3/${project()}/notifications/smn`),
    api("GET", `/v3/${project()}/notifications/fun`),
  ]);
  notifications = [...smn.notifications, ...fun.notifications];
  const body = $("#notification-table tbody");
  body.replaceChildren();
  for (const n of notifications) {
    const enabled = n.status === "enabled";
    const operations = n.operation_type === "complete"
      ? "All operations"
      : (n.operations || []).map((o) => `${o.service_type}/${o.resource_type}: ${o.trace_names.join(", ")}`).join("; ");
    body.append(element("tr", { "data-notification": n.notification_name },
      element("td", { text: n.notification_name }),
      element("td", { text: n.notification_type }),
      element("td", { class: "status", text: n.status }),
      element("td", { text: operations }),
      element("td", { text: n.topic_id || "" }),
      element("td", {},
        element("button", { type: "button", class: "view", onclick: () => viewNotification(n), text: "View" }),
        element("button", { type: "button", class: "modify", onclick: () => editNotification(n), text: "Modify" }),
        element("button", { type: "button", class: "toggle", onclick: () => setNotificationStatus(n, !enabled), text: enabled ? "Disable" : "Enable" }),
        element("button", { type: "button", class: "test", onclick: () => openTest(n), text: "Test" }),
        element("button", { type: "button", class: "delete", onclick: () => deleteNotification(n), text: "Delete" })),
    ));
  }
}

function viewNotification(n) {
  $("#trace-dialog h2").textContent = `Notification ${n.notification_name}`;
  $("#trace-json").textContent = JSON.stringify(n, null, 2);
  $("#trace-dialog").showModal();
}

function editNotification(n) {
  editingNotification = n;
  const form = $("#notification-form");
  form.reset();
  $("#notification-form-title").textContent = n ? `Modify ${n.notification_name}` : "Create Key Event Notification";
  if (n) {
    form.notification_name.value = n.notification_name;
    form.operation_type.value = n.operation_type;
    form.operations.value = (n.operations || [])
      .map((o) => `${o.service_type} ${o.resource_type} ${o.trace_names.join(",")}`).join("\n");
    form.users.value = (n.notify_user_list || []).flatMap((g) => g.user_list).join(",");
    form.topic_id.value = n.topic_id || "";
    const filter = n.filter || {};
    form.rules.value = (filter.rule || []).join("\n");
    form.condition.value = filter.condition || "AND";
    form.pattern.value = n.pattern ? JSON.stringify(n.pattern) : "";
    form.enabled.checked = n.status === "enabled";
  }
  toggleDependents(form);
  form.hidden = false;
}

function notificationBody(form) {
  const body = {
    notification_name: form.notification_name.value.trim(),
    operation_type: form.operation_type.value,
  };
  if (body.operation_type === "customized") {
    body.operations = form.operations.value.split("\n").map((line) => line.trim()).filter(Boolean)
      .map((line) => {
        const [service, resource, names = ""] = line.split(/\s+/);
        return { service_type: service, resource_type: resource, trace_names: names.split(",").filter(Boolean) };
      });
  }
  const users = form.users.value.split(",").map((u) => u.trim()).filter(Boolean);
  if (users.length) body.notify_user_list = [{ user_group: "console", user_list: users }];
  if (form.topic_id.value.trim()) body.topic_id = form.topic_id.value.trim();
  const rules = form.rules.value.split("\n").map((r) => r.trim()).filter(Boolean);
  if (rules.length) body.filter = { is_support_filter: true, condition: form.condition.value, rule: rules };
  if (form.pattern.value.trim()) {
    try {
      body.pattern = JSON.parse(form.pattern.value);
    } catch {
      throw new Error("The EventBridge pattern is not valid JSON");
    }
  }
  return body;
}

async function saveNotification(event) {
  event.preventDefault();
  const form = event.target;
  const body = notificationBody(form);
  const status = form.enabled.checked ? "enabled" : "disabled";
  if (editingNotification) {
    await api("PUT", `/v3/${project()}/notifications`, {
      body: { ...body, notification_id: editingNotification.notification_id, status },
    });
  } else {
    const created = await api("POST", `/v3/${project()}/notifications`, { body });
    if (created.status !== status) {
      await api("PUT", `/v3/${project()}/notifications`, {
        body: { ...body, notification_id: created.notification_id, status },
      });
    }
  }
  form.hidden = true;
  show(`Notification ${body.notification_name} saved`);
  await loadNotifications();
}

async function setNotificationStatus(n, enable) {
  const body = { ...n, status: enable ? "enabled" : "disabled" };
  for (const name of ["notification_type", "project_id", "create_time"]) delete body[name];
  await api("PUT", `/v3/${project()}/notifications`, { body });
  await loadNotifications();
}

async function deleteNotification(n) {
  if (!confirm(`Delete notification ${n.notification_name}?`)) return;
  await api("DELETE", `/v3/${project()}/notifications`, { params: { notification_id: n.notification_id } });
  show(`Notification ${n.notification_name} deleted`);
  await loadNotifications();
}

function openTest(n) {
  testing = n;
  $("#test-name").textContent = n.notification_name;
  $("#test-result").textContent = "";
  const form = $("#notification-test");
  if (!form.event.value && state.traces.length) form.event.value = JSON.stringify(state.traces[0], null, 2);
  form.hidden = false;
}

async function runTest(event) {
  event.preventDefault();
  let trace;
  try {
    trace = JSON.parse(event.target.event.value);
  } catch {
    throw new Error("The trace is not valid JSON");
  }
  const notification = { ...testing };
  for (const name of ["notification_id", "notification_type", "project_id", "create_time", "status"]) {
    delete notification[name];
  }
  const reply = await api("POST", `/v3/${project()}/notifications/test`, { body: { notification, event: trace } });
  $("#test-result").textContent = `${reply.matched ? "Matched" : "Not matched"}${reply.reason ? ": " + reply.reason : ""}`;
}

// -- wiring ----------------------------------------------------------------------------------------
function start() {
  $("#signin-form").addEventListener("submit", (event) => guarded(() => signIn(event)));
  $("#sign-out").addEventListener("click", signOut);
  const filters = $("#trace-filters");
  filters.addEventListener("submit", (event) => { event.preventDefault(); guarded(() => queryTraces(true)); });
  filters.service_type.addEventListener("change", fillResourceTypes);
  filters.addEventListener("change", () => toggleDependents(filters));
  toggleDependents(filters);
  $("#trace-refresh").addEventListener("click", () => guarded(() => queryTraces(false)));
  $("#trace-export").addEventListener("click", () => guarded(exportTraces));
  $("#trace-next").addEventListener("click", () => guarded(() => { state.page += 1; return queryTraces(false); }));
  $("#trace-prev").addEventListener("click", () => guarded(() => { state.page -= 1; return queryTraces(false); }));
  $("#tracker-create").addEventListener("click", () => editTracker(null));
  const trackerForm = $("#tracker-form");
  trackerForm.addEventListener("submit", (event) => guarded(() => saveTracker(event)));
  trackerForm.addEventListener("change", () => toggleDependents(trackerForm));
  $("#tag-form").addEventListener("submit", (event) => guarded(() => addTag(event)));
  $("#notification-create").addEventListener("click", () => editNotification(null));
  const notificationForm = $("#notification-form");
  notificationForm.addEventListener("submit", (event) => guarded(() => saveNotification(event)));
  notificationForm.addEventListener("change", () => toggleDependents(notificationForm));
  $("#notification-test").addEventListener("submit", (event) => guarded(() => runTest(event)));
  $$("form .cancel").forEach((button) => button.addEventListener("click", () => { button.form.hidden = true; }));
  $("#trace-dialog").addEventListener("close", () => { $("#trace-dialog h2").textContent = "View Trace"; });
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", start);
