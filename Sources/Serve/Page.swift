// The page at `GET /`: one static HTML file, no build step, no library, kept in the binary. It picks an image, asks
// a question, and reads the answer as it streams: `fetch` with `"stream": true`, then the response body read chunk
// by chunk, cut into server-sent events at blank lines, each `data:` line parsed as a `chat.completion.chunk` whose
// `delta.content` is appended to the answer. `#status` carries `data-state="done"` or `"error"` at the end, which
// `make serve-page-check` waits for in headless Chromium (Fixtures/serve/page_check.py).

/// The page at `/`.
enum Page {
    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Eaglet</title>
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; }
          form { display: grid; gap: .6rem; }
          label { display: grid; gap: .2rem; font-weight: 600; }
          input[type=text], input[type=password], input[type=number] { font: inherit; padding: .3rem; }
          #preview { max-width: 12rem; max-height: 12rem; image-rendering: pixelated; }
          #answer { white-space: pre-wrap; background: #f4f4f4; padding: .8rem; min-height: 3rem; }
          #status { color: #555; }
        </style>
        </head>
        <body>
        <h1>Eaglet <small id="model"></small></h1>
        <p>Pick an image and ask about it. The answer streams in from <code>POST /v1/chat/completions</code>.</p>
        <form id="ask">
          <label>Image (PNG or JPEG) <input type="file" id="image" accept="image/png,image/jpeg"></label>
          <img id="preview" alt="">
          <label>Question <input type="text" id="question" value="How many shapes are there?"></label>
          <label>Most new tokens <input type="number" id="max" value="64" min="1"></label>
          <label>API key <input type="password" id="key" placeholder="only if the server runs with --api-key"></label>
          <button id="send" type="submit">Ask</button>
        </form>
        <h2>Answer</h2>
        <pre id="answer"></pre>
        <p id="status" data-state="idle"></p>
        <script>
        const $ = (id) => document.getElementById(id);
        const headers = () => $('key').value ? { 'Authorization': 'Bearer ' + $('key').value } : {};
        let model = 'eaglet';
        fetch('/v1/models', { headers: headers() }).then((r) => r.json())
          .then((j) => { model = j.data[0].id; $('model').textContent = model; }).catch(() => {});

        // A picked file as a data: URL (the request carries the image itself).
        const dataURL = (file) => new Promise((done, fail) => {
          const reader = new FileReader();
          reader.onload = () => done(reader.result);
          reader.onerror = () => fail(reader.error);
          reader.readAsDataURL(file);
        });
        $('image').addEventListener('change', async () => {
          const file = $('image').files[0];
          $('preview').src = file ? await dataURL(file) : '';
        });

        function status(text, state) {
          $('status').textContent = text;
          $('status').dataset.state = state;
        }

        $('ask').addEventListener('submit', async (event) => {
          event.preventDefault();
          $('answer').textContent = '';
          $('send').disabled = true;
          status('asking…', 'busy');
          const content = [];
          const file = $('image').files[0];
          if (file) content.push({ type: 'image_url', image_url: { url: await dataURL(file) } });
          content.push({ type: 'text', text: $('question').value });
          const body = { model, messages: [{ role: 'user', content }], stream: true, max_tokens: +$('max').value };
          const sent = performance.now();
          let first = null, finish = null;
          try {
            const response = await fetch('/v1/chat/completions', {
              method: 'POST', headers: { 'Content-Type': 'application/json', ...headers() }, body: JSON.stringify(body),
            });
            if (!response.ok) {
              const j = await response.json().catch(() => null);
              throw new Error(j && j.error ? j.error.message : response.status + ' ' + response.statusText);
            }
            // Server-sent events: "data: {json}" lines, events separated by a blank line, "data: [DONE]" last.
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            let buffer = '';
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buffer += decoder.decode(value, { stream: true });
              let cut;
              while ((cut = buffer.indexOf('\n\n')) >= 0) {
                const line = buffer.slice(0, cut);
                buffer = buffer.slice(cut + 2);
                if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
                const chunk = JSON.parse(line.slice(6));
                if (chunk.error) throw new Error(chunk.error.message);
                const choice = chunk.choices[0];
                if (!choice) continue;
                if (choice.delta.content) {
                  if (first === null) first = performance.now();
                  $('answer').textContent += choice.delta.content;
                }
                if (choice.finish_reason) finish = choice.finish_reason;
              }
            }
            const ms = first === null ? '-' : (first - sent).toFixed(0);
            status('done (' + finish + '); first token after ' + ms + ' ms', 'done');
          } catch (error) {
            status('error: ' + error.message, 'error');
          } finally {
            $('send').disabled = false;
          }
        });
        </script>
        </body>
        </html>
        """#
}
