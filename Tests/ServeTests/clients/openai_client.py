"""eaglet serve as the official `openai` Python client sees it (Tests/ServeTests, `make test` installs the client).

Usage: openai_client.py SCENARIO --base-url http://127.0.0.1:PORT/v1 --image PNG --question TEXT --max-tokens N
Prints one JSON object on stdout.

Scenarios
  golden      GET /v1/models; a text-only question; the image and question without and with streaming
              (stream_options.include_usage): each answer's text, finish_reason and usage; then what the client
              raises for a wrong API key and for a bad parameter: status, class and error object
  concurrent  8 clients at once (threads), each asking about the image, half of them streaming: their texts
"""

import argparse
import base64
import json
import sys
import threading

import openai


def image_part(path):
    with open(path, "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + data}}


def ask(client, model, args, image=True, stream=False):
    content = ([image_part(args.image)] if image else []) + [{"type": "text", "text": args.question}]
    messages = [{"role": "user", "content": content}]
    if not stream:
        r = client.chat.completions.create(
            model=model, messages=messages, max_tokens=args.max_tokens, temperature=0)
        return {
            "text": r.choices[0].message.content, "finish_reason": r.choices[0].finish_reason,
            "role": r.choices[0].message.role, "object": r.object, "id": r.id, "model": r.model,
            "usage": r.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}),
        }
    text, chunks, finish, role, usage, objects = "", 0, None, None, None, set()
    for chunk in client.chat.completions.create(
            model=model, messages=messages, max_tokens=args.max_tokens, temperature=0, stream=True,
            stream_options={"include_usage": True}):
        chunks += 1
        objects.add(chunk.object)
        if chunk.usage is not None:
            usage = chunk.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        role = role or delta.role
        text += delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
    return {"text": text, "finish_reason": finish, "role": role, "chunks": chunks, "objects": sorted(objects),
            "usage": usage}


def golden(client, args):
    models = [m.id for m in client.models.list().data]
    model = models[0]
    return {
        "models": models,
        "text_only": ask(client, model, args, image=False),
        "image": ask(client, model, args),
        "image_stream": ask(client, model, args, stream=True),
        "errors": errors(client, args),
    }


def concurrent(client, args):
    model = client.models.list().data[0].id
    results, errors = [None] * 8, []

    def one(k):
        try:
            results[k] = ask(client, model, args, stream=k % 2 == 1)["text"]
        except Exception as e:  # noqa: BLE001 — reported, not raised: the test names it
            errors.append(f"client {k}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=one, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"texts": results, "errors": errors}


def errors(client, args):
    out = {}
    wrong = openai.OpenAI(base_url=args.base_url, api_key="wrong-key", max_retries=0)
    try:
        wrong.models.list()
        out["wrong_key"] = None
    except openai.APIStatusError as e:
        out["wrong_key"] = {"status": e.status_code, "class": type(e).__name__, "error": e.body}
    model = client.models.list().data[0].id
    try:
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": args.question}], max_tokens=-3)
        out["negative_max_tokens"] = None
    except openai.APIStatusError as e:
        out["negative_max_tokens"] = {"status": e.status_code, "class": type(e).__name__, "error": e.body}
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=["golden", "concurrent"])
    p.add_argument("--base-url", required=True)
    p.add_argument("--api-key", default="none")
    p.add_argument("--image", required=True)
    p.add_argument("--question", required=True)
    p.add_argument("--max-tokens", type=int, default=32)
    args = p.parse_args()
    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=120)
    result = {"golden": golden, "concurrent": concurrent}[args.scenario](client, args)
    result["openai_version"] = openai.__version__
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
