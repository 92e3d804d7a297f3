// One Server-Sent Events reader for the portal's streams (the club's live
// changes and the park's interest events). EventSource cannot send the
// Last-Event-ID a reload resumes from or tell a 401 from a network error,
// so the streams are read with fetch and parsed here, as the WHATWG format
// says: blank-line separated blocks of "field: value" lines, ":" comments.

/** readSSE reads body until it ends and calls on(id, type, data) for each
 * event: id is the event's id ("" when it has none), type its event name
 * ("message" by default), data its data lines joined by "\n", or null when
 * it had none. */
export async function readSSE(body, on) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let id = "", type = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
        if (field === "id") id = val;
        else if (field === "event") type = val;
        else if (field === "data") data.push(val);
      }
      on(id, type, data.length ? data.join("\n") : null);
    }
  }
}
