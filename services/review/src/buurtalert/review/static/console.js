// The review console's script. Plain JavaScript, no htmx or framework: the console needs
// three small behaviours (refresh the queue when the server sends an event, keep an open
// item's claim alive, keyboard shortcuts), a hundred lines that the Content-Security-Policy
// (scripts from this site only) allows and that no vendored library has to be kept up to
// date for. Every page works without it: forms post, links open, a reload shows changes.
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : null;

  // Minutes since an item arrived, kept current (the server renders the first value).
  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      const minutes = Math.max(0, Math.floor((Date.now() - Date.parse(el.dataset.since)) / 60000));
      el.textContent = el.textContent.replace(/^\d+/, String(minutes));
    });
  }
  setInterval(tick, 30000);

  // The queue: server-sent events say it changed; the rows are fetched again.
  const queue = document.getElementById("queue");
  let selected = -1;
  function rows() { return Array.from(document.querySelectorAll("#queue li.item")); }
  function select(index) {
    const all = rows();
    if (!all.length) { selected = -1; return; }
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach(function (row, i) { row.classList.toggle("selected", i === selected); });
    all[selected].querySelector("a.open").focus();
  }
  if (queue) {
    const live = document.getElementById("live-state");
    async function refresh() {
      queue.setAttribute("aria-busy", "true");
      const keep = selected >= 0 && rows()[selected] ? rows()[selected].dataset.id : null;
      // rows ticked for a bulk reject stay ticked (by id: a new version is a new choice)
      const picked = Array.from(queue.querySelectorAll("input.pick:checked")).map(function (box) { return box.value; });
      try {
        const response = await fetch(queue.dataset.rows, { credentials: "same-origin" });
        if (response.ok) {
          queue.innerHTML = await response.text();
          queue.querySelectorAll("input.pick").forEach(function (box) { box.checked = picked.includes(box.value); });
          if (keep) {
            const index = rows().findIndex(function (row) { return row.dataset.id === keep; });
            if (index >= 0) { selected = index; rows()[index].classList.add("selected"); } else { selected = -1; }
          }
        }
      } finally { queue.setAttribute("aria-busy", "false"); }
    }
    const events = new EventSource(queue.dataset.events);
    events.addEventListener("queue", refresh);
    events.onopen = function () { if (live) live.classList.remove("offline"); };
    events.onerror = function () { if (live) live.classList.add("offline"); };
  }

  // An open item: keep its claim alive while the page is open.
  const item = document.getElementById("item");
  if (item && item.dataset.open === "true" && csrf) {
    const every = Math.max(10, Number(item.dataset.claimSeconds) / 3) * 1000;
    setInterval(async function () {
      const response = await fetch("/items/" + encodeURIComponent(item.dataset.id) + "/claim", {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, "Accept": "application/json" },
      });
      if (response.ok) {
        const body = await response.json();
        const until = document.getElementById("claim-until");
        if (until && body.claim) until.textContent = body.claim.until.substring(11, 16);
      } else if (response.status === 409) {
        window.location.reload(); // someone else holds it or it was decided: show what is
      }
    }, every);
  }

  // Approving an edited text says so on its button.
  const edit = document.getElementById("edit-text");
  const approve = document.getElementById("approve-button");
  if (edit && approve) {
    edit.addEventListener("input", function () {
      const changed = edit.value.trim() !== edit.dataset.original.trim();
      approve.lastChild.textContent = " " + (changed ? approve.dataset.edited : approve.dataset.plain);
    });
  }

  // The explanation the author will receive, for the reason chosen.
  const reason = document.getElementById("reject-reason");
  if (reason) {
    reason.addEventListener("change", function () {
      const option = reason.options[reason.selectedIndex];
      document.getElementById("explanation").textContent = option.dataset.explanation;
      const english = document.getElementById("explanation-en");
      if (english) english.textContent = option.dataset.explanationEn;
    });
    reason.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); reason.form.requestSubmit(); }
    });
  }

  // Keyboard: j/k next/previous, Enter or o open, u urgent only; on an item a approve,
  // r choose a reason to reject (Enter rejects), e edit the text, Esc back to the queue.
  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target.matches("input, textarea, select")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const click = function (id) { const el = document.getElementById(id); if (el && !el.disabled) el.click(); };
    const focus = function (id) { const el = document.getElementById(id); if (el) { event.preventDefault(); el.focus(); } };
    switch (event.key) {
      case "j": select(selected + 1); break;
      case "k": select(selected - 1); break;
      case "o": if (selected >= 0) rows()[selected].querySelector("a.open").click(); break;
      case "u": {
        const box = document.getElementById("urgent-only");
        if (box) { box.checked = !box.checked; box.form.requestSubmit(); }
        break;
      }
      case "a": if (item) click("approve-button"); break;
      case "r": if (item) focus("reject-reason"); break;
      case "e": if (item) focus("edit-text"); break;
      case "z": if (item) click("undo-button"); break;
      case "x": {
        const box = selected >= 0 && rows()[selected] ? rows()[selected].querySelector("input.pick") : null;
        if (box) box.checked = !box.checked;
        break;
      }
      case "Escape": if (item) window.location.assign("/queue"); break;
    }
  });
})();
