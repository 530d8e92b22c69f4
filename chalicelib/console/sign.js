// SDK-HMAC-SHA256 request signing in the browser (WebCrypto), the same scheme as
// chalicelib/signing.py and Huawei Cloud's SDK signer. The secret key never leaves the page.
"use strict";

const ALGORITHM = "SDK-HMAC-SHA256";
const encoder = new TextEncoder();

// Python's quote(text, safe="~"): only A-Z a-z 0-9 - _ . ~ stay as they are.
function encode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) =>
    "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

function canonicalUri(path) {
  const uri = decodeURIComponent(path).split("/").map(encode).join("/");
  return uri.endsWith("/") ? uri : uri + "/";
}

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// The canonical query: every (name, value) pair sorted, encoded; also what is sent as the query.
function queryString(pairs) {
  return pairs
    .map(([name, value]) => [String(name), String(value)])
    .sort((x, y) => compare(x[0], y[0]) || compare(x[1], y[1]))
    .map(([name, value]) => `${encode(name)}=${encode(value)}`)
    .join("&");
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

async function hmacHex(secret, text) {
  const key = await crypto.subtle.importKey(
    "raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(text)));
}

function sdkDate(now) {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// The headers to send with a request to `host` (the endpoint's host[:port]) for `path` (without
// any stage prefix: the API signs the path as its route sees it), `pairs` and `body` (a string).
async function signRequest({ accessKeyId, secret, method, host, path, pairs, body, now }) {
  const headers = { "X-Sdk-Date": sdkDate(now || new Date()) };
  if (body) headers["Content-Type"] = "application/json";
  const values = { host, "x-sdk-date": headers["X-Sdk-Date"] };
  if (body) values["content-type"] = "application/json";
  const signed = Object.keys(values).sort();
  const canonicalHeaders = signed.map((name) => `${name}:${values[name]}\n`).join("");
  const bodyHash = await sha256Hex(encoder.encode(body || ""));
  const canonical = [
    method.toUpperCase(), canonicalUri(path), queryString(pairs), canonicalHeaders,
    signed.join(";"), bodyHash,
  ].join("\n");
  const toSign = `${ALGORITHM}\n${headers["X-Sdk-Date"]}\n${await sha256Hex(encoder.encode(canonical))}`;
  headers.Authorization = `${ALGORITHM} Access=${accessKeyId}, SignedHeaders=${signed.join(";")}, ` +
    `Signature=${await hmacHex(secret, toSign)}`;
  return headers;
}

window.OpenCtsSigner = { signRequest, queryString, canonicalUri };
