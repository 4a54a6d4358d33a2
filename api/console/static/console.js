// Poll job progress while any job on the page is queued or running (no build step, no framework).
(function () {
  const table = document.querySelector("table[data-poll]");
  if (!table) return;
  const active = () => [...table.querySelectorAll("td.status")].some(td => /queued|running/.test(td.textContent));
  async function poll() {
    if (!active()) return;
    const response = await fetch(table.dataset.poll, { credentials: "same-origin" });
    if (!response.ok) return;
    for (const job of (await response.json()).jobs) {
      const row = document.getElementById(job.job_id);
      if (!row) continue;
      row.querySelector(".status").textContent = job.status;
      row.querySelector(".documents").textContent = job.progress.documents;
      row.querySelector(".chunks").textContent = job.progress.chunks;
      row.querySelector(".finished").textContent = job.finished;
      if (!/queued|running/.test(job.status)) { location.reload(); return; }
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
})();
