// The SDK against a real daemon. test/sdk (Go) starts one with the busybox
// test image as "busybox" and the python and node language images, builds
// the package with tsc and runs `node --test` with $SANDBOXD_SOCKET naming
// the daemon's socket.

import assert from "node:assert/strict";
import { mkdtemp, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";

import { Client, eventBytes, requestForCode, SandboxdError } from "../dist/index.js";
import { tarDirectory } from "../dist/tar.js";

const socketPath = process.env.SANDBOXD_SOCKET;
if (!socketPath) throw new Error("SANDBOXD_SOCKET is not set: run these tests through `go test ./test/sdk/`");
const client = new Client({ socketPath });

/** Collects an async iterator's items. */
async function all(it) {
  const out = [];
  for await (const e of it) out.push(e);
  return out;
}

/** Reads events from run until the stdout seen so far includes want; returns it. */
async function untilOutput(run, want) {
  let seen = "";
  for await (const e of run) {
    seen += e.data ?? "";
    if (seen.includes(want)) return seen;
  }
  return seen;
}

async function rejectsWith(promise, code, status) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof SandboxdError, `${e} is not a SandboxdError`);
    assert.equal(e.code, code);
    assert.equal(e.status, status);
    assert.ok(e.message.length > 0);
    return true;
  });
}

describe("one-shot runs", () => {
  test("execute in raw mode", async () => {
    const r = await client.execute({ image: "busybox", cmd: ["sh", "-c", "cat; echo err >&2; exit 3"], stdin: "in\n" });
    assert.equal(r.status, "runtime_error");
    assert.equal(r.run.exit_code, 3);
    assert.equal(r.run.stdout, "in\n");
    assert.equal(r.run.stderr, "err\n");
  });

  test("runCode in languages", async () => {
    const cases = [
      ["python", "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", "2 3 4", "9\n"],
      ["javascript", "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.trim().toUpperCase()))", "shout", "SHOUT\n"],
    ];
    for (const [language, code, stdin, want] of cases) {
      const r = await client.runCode(language, code, { stdin });
      assert.equal(r.status, "ok", JSON.stringify(r));
      assert.equal(r.language, language);
      assert.equal(r.run.stdout, want);
    }
    const withFiles = await client.runCode("js", "console.log(require('./helper.js').twice(process.argv[2]))",
      { files: { "helper.js": "exports.twice = (s) => s + s;" }, args: ["ab"] });
    assert.equal(withFiles.run.stdout, "abab\n");
  });

  test("errors carry the API's code", async () => {
    await rejectsWith(client.runCode("cobol", "x"), "unknown_language", 404);
    await rejectsWith(client.execute({ image: "nosuch", cmd: ["true"] }), "unknown_image", 404);
    await rejectsWith(client.execute({ image: "busybox" }), "invalid_request", 400);
    await rejectsWith(client.getSandbox("sb-000000000000000000000000"), "unknown_sandbox", 404);
    await rejectsWith(client.image("nosuch"), "not_found", 404);
    await rejectsWith(new Client({ socketPath: "/nonexistent/sandboxd.sock" }).health(), "connection_error", 0);
  });

  test("stream yields events, the result last", async () => {
    const events = await all(client.stream({ image: "busybox", cmd: ["sh", "-c", "echo one; sleep 0.2; echo two >&2; printf '\\377'"] }));
    const last = events.at(-1);
    assert.equal(last.type, "result");
    assert.equal(last.run.exit_code, 0);
    const out = Buffer.concat(events.filter((e) => e.type === "stdout").map(eventBytes));
    assert.deepEqual(out, Buffer.from("one\n\xff", "latin1"));
    assert.equal(events.filter((e) => e.type === "stderr").map((e) => e.data).join(""), "two\n");
    assert.ok(events.some((e) => e.type === "stdout" && e.encoding === "base64"));
    const lang = await all(client.stream(requestForCode("python", "print('x')")));
    assert.deepEqual(lang.filter((e) => e.type === "stage").map((e) => e.stage), ["run"]);
    assert.equal(lang.at(-1).status, "ok");
  });

  test("interactive: stdin while the program runs", async () => {
    const run = await client.interactive({ image: "busybox", cmd: ["sh", "-c", "read a; echo got $a; read b; echo got $b >&2; cat; exit 4"] });
    try {
      run.sendStdin("first\n");
      // The answer to the first line comes before the second is sent.
      assert.equal(await untilOutput(run, "got first\n"), "got first\n");
      run.sendStdin(Buffer.from("second\n"));
      run.sendStdin("rest");
      run.closeStdin();
      const r = await run.result();
      assert.equal(r.run.exit_code, 4);
      assert.equal(r.run.stdout, "got first\nrest");
      assert.equal(r.run.stderr, "got second\n");
    } finally {
      run.close();
    }
  });

  test("interactive: a signal", async () => {
    const run = await client.interactive({ image: "busybox", cmd: ["sh", "-c", "echo ready; exec cat"] });
    try {
      await untilOutput(run, "ready");
      run.signal("SIGINT");
      const r = await run.result();
      assert.equal(r.run.signal, "SIGINT");
      assert.equal(r.run.exit_code, 130);
    } finally {
      run.close();
    }
  });

  test("interactive: an error event rejects with its code", async () => {
    const run = await client.interactive({ image: "nosuch", cmd: ["true"] });
    try {
      await rejectsWith(run.result(), "unknown_image", 0);
    } finally {
      run.close();
    }
  });

  test("the daemon's state", async () => {
    assert.equal((await client.health()).status, "ok");
    assert.equal((await client.version()).api, "v1");
    assert.ok((await client.images()).some((i) => i.name === "busybox:latest"));
    assert.equal((await client.image("busybox")).name, "busybox:latest");
    const langs = await client.languages();
    assert.ok(langs.find((l) => l.name === "javascript").available);
    assert.match(await client.metrics(), /sandboxd_sandboxes_in_flight/);
    assert.equal(await client.ready(), true);
  });
});

describe("test sets", () => {
  test("upload, run, list, delete", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sdk-ts-set-"));
    for (const [name, body] of [["1.in", "2 3\n"], ["1.ans", "5\n"], ["2.in", "4 4\n"], ["2.out", "9\n"]]) {
      await writeFile(join(dir, name), body);
    }
    const set = await client.createTestset(await tarDirectory(dir));
    await rm(dir, { recursive: true });
    assert.equal(set.test_count, 2);
    assert.deepEqual(set.tests.map((t) => t.name), ["1", "2"]);
    const r = await client.execute({ language: "javascript", testset: set.id, files: [{ name: "main.js",
      content: "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.split(/\\s+/).filter(Boolean).map(Number).reduce((a,b)=>a+b,0)))" }] });
    assert.deepEqual(r.tests.map((t) => t.status), ["accepted", "wrong_answer"]);
    assert.ok((await client.testsets()).some((s) => s.id === set.id));
    assert.equal((await client.testset(set.id)).tests[1].answer_bytes, 2);
    await client.deleteTestset(set.id);
    await assert.rejects(client.testset(set.id), (e) => e instanceof SandboxdError && e.code === "unknown_testset");
    await assert.rejects(client.createTestset(Buffer.from("not an archive".repeat(100))), (e) => e instanceof SandboxdError && e.code === "invalid_request");
  });
});

describe("TCP with a token", () => {
  const url = process.env.SANDBOXD_URL;
  const token = process.env.SANDBOXD_TEST_TOKEN;

  test("calls, sessions and WebSockets carry the token", async () => {
    assert.ok(url && token, "SANDBOXD_URL and SANDBOXD_TEST_TOKEN are not set");
    const tcp = new Client({ url, token });
    assert.equal((await tcp.execute({ image: "busybox", cmd: ["echo", "tcp"] })).run.stdout, "tcp\n");
    await tcp.withSandbox({ image: "busybox" }, async (sb) => {
      assert.ok((await tcp.sandboxes()).some((s) => s.id === sb.id));
      // The sandbox is the token's subject's: the socket's caller (uid:0) can't see it.
      await rejectsWith(client.getSandbox(sb.id), "unknown_sandbox", 404);
      const run = await sb.execInteractive(["cat"]);
      try {
        run.sendStdin("over tcp");
        run.closeStdin();
        assert.equal((await run.result()).run.stdout, "over tcp");
      } finally {
        run.close();
      }
    });
    const anonymous = new Client({ url, token: "" });
    await rejectsWith(anonymous.health(), "unauthorized", 401);
    await rejectsWith(new Client({ url, token: "not-a-jwt" }).interactive({ image: "busybox", cmd: ["true"] }), "unauthorized", 401);
  });
});

describe("sessions", () => {
  test("files and exec", async () => {
    let id;
    await client.withSandbox({ language: "python", labels: { suite: "sdk" } }, async (sb) => {
      id = sb.id;
      assert.match(sb.id, /^sb-/);
      assert.equal(sb.info.language, "python");
      assert.equal((await sb.files.write("data/in.txt", "hello")).path, "/work/data/in.txt");
      await sb.files.write("run.sh", "#!/bin/sh\necho script\n", { mode: 0o755 });
      const r = await sb.exec("python3 -c \"print(open('data/in.txt').read().upper())\" > out.txt && ./run.sh");
      assert.equal(r.run.stdout, "script\n", JSON.stringify(r));
      assert.equal(await sb.files.readText("out.txt"), "HELLO\n");
      assert.equal((await sb.exec(["cat", "in.txt"], { cwd: "data" })).run.stdout, "hello");
      const listing = Object.fromEntries((await sb.files.list()).map((e) => [e.name, e]));
      assert.equal(listing["run.sh"].mode, "0755");
      assert.equal(listing.data.type, "dir");
      assert.ok((await sb.files.list("/work", { recursive: true })).some((e) => e.path === "/work/data/in.txt"));
      await sb.files.write("/tmp/t.bin", new Uint8Array([0, 1]));
      assert.deepEqual(await sb.files.read("/tmp/t.bin"), Buffer.from([0, 1]));
      await sb.files.remove("data", { recursive: true });
      await rejectsWith(sb.files.read("data/in.txt"), "not_found", 404);
      await rejectsWith(sb.files.read("../etc/passwd"), "invalid_request", 400);
      assert.ok((await client.sandboxes()).some((s) => s.id === sb.id));
      assert.equal((await sb.refresh()).usage.execs, 2);
    });
    await rejectsWith(client.getSandbox(id), "unknown_sandbox", 404);
  });

  test("upload and download", async () => {
    const src = await mkdtemp(join(tmpdir(), "sdk-src-"));
    const dst = await mkdtemp(join(tmpdir(), "sdk-dst-"));
    try {
      await mkdir(join(src, "pkg", "sub"), { recursive: true });
      await writeFile(join(src, "pkg", "sub", "a.txt"), "alpha");
      const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await writeFile(join(src, "top.bin"), bin);
      const long = "d".repeat(120);
      await mkdir(join(src, long));
      await writeFile(join(src, long, "f.txt"), "long name");
      await symlink("pkg/sub/a.txt", join(src, "link"));
      await client.withSandbox({ image: "busybox" }, async (sb) => {
        const up = await sb.upload(src, "/work/up");
        assert.equal(up.path, "/work/up");
        assert.equal(up.bytes, 5 + 256 + 9);
        const r = await sb.exec(`cd up && cat link && wc -c < top.bin && cat ${long}/f.txt && echo made > pkg/new.txt`);
        assert.equal(r.run.stdout, "alpha256\nlong name", JSON.stringify(r.run));
        const names = await sb.download(dst, "/work/up");
        assert.ok(names.includes("pkg/new.txt"), names.join(" "));
        assert.equal(await readFile(join(dst, "pkg", "new.txt"), "utf8"), "made\n");
        assert.deepEqual(await readFile(join(dst, "top.bin")), bin);
        assert.equal(await readFile(join(dst, long, "f.txt"), "utf8"), "long name");
        assert.equal(await readlink(join(dst, "link")), "pkg/sub/a.txt");
      });
    } finally {
      await rm(src, { recursive: true, force: true });
      await rm(dst, { recursive: true, force: true });
    }
  });

  test("download refuses links that leave the directory", async () => {
    const dst = await mkdtemp(join(tmpdir(), "sdk-dst-"));
    try {
      await client.withSandbox({ image: "busybox" }, async (sb) => {
        await sb.files.write("ok.txt", "fine");
        for (const link of ["/etc/passwd", "../../outside"]) {
          await sb.exec(["sh", "-c", `rm -f bad && ln -s ${link} bad`]);
          await assert.rejects(sb.download(dst), /points outside the directory/);
        }
      });
      assert.deepEqual(await readdir(dst), []);
    } finally {
      await rm(dst, { recursive: true, force: true });
    }
  });

  test("exec stream and interactive exec", async () => {
    await client.withSandbox({ image: "busybox" }, async (sb) => {
      const events = await all(sb.execStream(["sh", "-c", "echo a; echo b >&2"]));
      assert.equal(events.at(-1).type, "result");
      assert.equal(events.filter((e) => e.type === "stdout").map((e) => e.data).join(""), "a\n");
      const run = await sb.execInteractive(["sh", "-c", "read x; echo $x$x > twice.txt"]);
      try {
        run.sendStdin("ab\n");
        run.closeStdin();
        assert.equal((await run.result()).run.status, "ok");
      } finally {
        run.close();
      }
      assert.equal(await sb.files.readText("twice.txt"), "abab\n");
    });
  });

  test("detached exec, attach and kill", async () => {
    await client.withSandbox({ image: "busybox" }, async (sb) => {
      const ex = await sb.detach(["sh", "-c", "echo started; read line; echo got $line"]);
      assert.ok(["running", "exited"].includes(ex.state));
      assert.deepEqual((await sb.execs()).map((e) => e.exec_id), [ex.exec_id]);
      const att = await sb.attach(ex.exec_id);
      try {
        await untilOutput(att, "started\n");
        att.sendStdin("hi\n");
        const final = await att.result();
        assert.equal(final.state, "exited");
        assert.equal(final.result.stdout, "started\ngot hi\n");
      } finally {
        att.close();
      }
      assert.equal((await sb.getExec(ex.exec_id, { wait: true })).state, "exited");
      const long = await sb.detach(["sleep", "60"]);
      await sb.kill(long.exec_id);
      assert.equal((await sb.getExec(long.exec_id)).state, "killed");
      await rejectsWith(sb.getExec("ex-0000000000000000"), "unknown_exec", 404);
    });
  });
});

describe("network of a session", () => {
  // The test daemon has egress off: no host may be allowed, but an empty
  // list is (it changes nothing for a sandbox without one).
  test("setNetwork and updateSandbox", async () => {
    await rejectsWith(client.createSandbox({ image: "busybox", network: { allow: ["x.example"] } }), "invalid_request", 400);
    await client.withSandbox({ image: "busybox" }, async (sb) => {
      const info = await sb.setNetwork([]);
      assert.equal(info.id, sb.id);
      assert.equal(sb.info, info);
      assert.equal((await client.updateSandbox(sb.id, { network: { allow: [] } })).id, sb.id);
      await rejectsWith(sb.setNetwork(["x.example"]), "invalid_request", 400);
      assert.equal((await sb.exec("echo still")).run.stdout, "still\n");
    });
    await rejectsWith(client.updateSandbox("sb-000000000000000000000000", { network: { allow: [] } }), "unknown_sandbox", 404);
  });
});

describe("image builds", () => {
  test("buildImage, then run the image", async () => {
    const events = [];
    const image = await client.buildImage(
      { name: "sdk-ts-built:1", from: "busybox", run: ["echo hi > /built", ["sh", "-c", "echo out; echo err >&2"]], env: { GREETING: "hello" } },
      (e) => events.push(e),
    );
    try {
      assert.equal(image.name, "sdk-ts-built:1");
      assert.ok(image.id);
      assert.equal(image.type, undefined);
      assert.deepEqual(events.filter((e) => ["step", "step_end", "result"].includes(e.type)).map((e) => e.type),
        ["step", "step_end", "step", "step_end", "result"]);
      assert.deepEqual(events[0].cmd, ["/bin/sh", "-c", "echo hi > /built"]);
      assert.equal(events.filter((e) => e.type === "stdout").map((e) => eventBytes(e).toString()).join(""), "out\n");
      assert.equal(events.filter((e) => e.type === "stderr").map((e) => e.data).join(""), "err\n");
      assert.deepEqual(events.filter((e) => e.type === "step_end").map((e) => e.result.exit_code), [0, 0]);
      const r = await client.execute({ image: "sdk-ts-built:1", cmd: ["sh", "-c", "cat /built; echo $GREETING"] });
      assert.equal(r.run.stdout, "hi\nhello\n");
    } finally {
      await client.removeImage("sdk-ts-built:1");
    }
  });

  test("a failed step throws its code", async () => {
    const seen = [];
    await assert.rejects(all(client.buildImageEvents({ name: "sdk-ts-failed:1", from: "busybox", run: ["echo one", "exit 3", "echo never"] },
      (e) => seen.push(e.type))), (e) => {
      assert.ok(e instanceof SandboxdError);
      assert.equal(e.code, "invalid_request");
      assert.match(e.message, /step 2/);
      return true;
    });
    assert.deepEqual(seen, ["step", "stdout", "step_end", "step", "step_end", "error"]);
    await rejectsWith(client.image("sdk-ts-failed:1"), "not_found", 404);
    await rejectsWith(client.buildImage({ name: "sdk-ts-failed:1", from: "nosuch", run: ["true"] }), "unknown_image", 404);
    await rejectsWith(client.buildImage({ name: "sdk-ts-failed:1", from: "busybox", run: [] }), "invalid_request", 400);
  });
});
