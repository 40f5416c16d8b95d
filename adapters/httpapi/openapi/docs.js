// Renders /api/openapi.json as a readable page: operations grouped by tag, with their
// parameters, request body and responses. No framework, no network beyond this server.
(async function () {
  const ops = document.getElementById("ops");
  const spec = await (await fetch("/api/openapi.json")).json();
  document.getElementById("summary").textContent = spec.info.summary || "";
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    for (const k of kids) e.append(k);
    return e;
  };
  const resolve = (s) => {
    if (s && s.$ref) return resolve(s.$ref.split("/").slice(1).reduce((o, k) => o[k], spec));
    return s || {};
  };
  const refName = (s) => (s && s.$ref ? s.$ref.split("/").pop() : "");
  const example = (s, depth = 0) => {
    s = resolve(s);
    if (depth > 4) return "…";
    if (s.allOf) return Object.assign({}, ...s.allOf.map((x) => example(x, depth + 1)));
    if (s.oneOf) return example(s.oneOf[0], depth + 1);
    const type = Array.isArray(s.type) ? s.type[0] : s.type;
    if (s.const !== undefined) return s.const;
    if (s.enum) return s.enum[0];
    if (type === "object" || s.properties) {
      const out = {};
      for (const [k, v] of Object.entries(s.properties || {})) out[k] = example(v, depth + 1);
      return out;
    }
    if (type === "array") return [example(s.items, depth + 1)];
    if (type === "integer" || type === "number") return 0;
    if (type === "boolean") return false;
    return s.format === "date-time" ? "2026-11-01T12:00:00Z" : "string";
  };
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of ["get", "post", "put", "patch", "delete"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags || ["other"])[0];
      (byTag[tag] = byTag[tag] || []).push({ path, method, op, shared: item.parameters || [] });
    }
  }
  ops.textContent = "";
  const toc = document.getElementById("toc");
  for (const [tag, list] of Object.entries(byTag)) {
    toc.append(el("a", { href: "#" + tag }, tag));
    ops.append(el("h2", { id: tag }, tag));
    for (const { path, method, op, shared } of list) {
      const body = el("div");
      if (op.description) body.append(el("p", {}, op.description));
      const secured = op.security === undefined ? spec.security : op.security;
      if (secured && secured.length) body.append(el("p", { class: "lock" }, "Needs Authorization: Bearer <token or API key>"));
      const params = [...shared, ...(op.parameters || [])].map(resolve);
      if (params.length) {
        const t = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "schema"), el("th", {}, "description")));
        for (const p of params) {
          const s = resolve(p.schema);
          t.append(el("tr", {}, el("td", {}, p.name + (p.required ? " *" : "")), el("td", {}, p.in),
            el("td", {}, JSON.stringify(s.enum || s.type || "")), el("td", {}, p.description || "")));
        }
        body.append(t);
      }
      const req = op.requestBody && Object.entries(op.requestBody.content || {})[0];
      if (req) {
        body.append(el("h4", {}, "Request " + req[0] + (refName(req[1].schema) ? " (" + refName(req[1].schema) + ")" : "")));
        body.append(el("pre", {}, JSON.stringify(example(req[1].schema), null, 2)));
      }
      const t = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "meaning")));
      for (const [code, r] of Object.entries(op.responses || {})) {
        const res = resolve(r);
        t.append(el("tr", {}, el("td", {}, code), el("td", {}, res.description || "")));
      }
      body.append(el("h4", {}, "Responses"), t);
      const ok = Object.entries(op.responses || {}).find(([c]) => c.startsWith("2"));
      const okContent = ok && resolve(ok[1]).content;
      const json = okContent && okContent["application/json"];
      if (json) body.append(el("pre", {}, JSON.stringify(example(json.schema), null, 2)));
      ops.append(el("details", { class: "op" },
        el("summary", {}, el("span", { class: "method " + method }, method), " " + path + " — " + (op.summary || "")), body));
    }
  }
})();
