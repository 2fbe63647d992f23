"""The SDK against a real daemon. test/sdk (Go) starts one with the busybox
test image as "busybox" and the python and node language images, and runs
``python3 -m unittest`` here with $SANDBOXD_SOCKET naming its socket."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import unittest

import sandboxd

SOCKET = os.environ.get("SANDBOXD_SOCKET", "")


def setUpModule() -> None:
    if not SOCKET:
        raise RuntimeError("SANDBOXD_SOCKET is not set: run these tests through `go test ./test/sdk/`")


class OneShot(unittest.TestCase):
    def setUp(self) -> None:
        self.client = sandboxd.Client(SOCKET)

    def test_execute_raw(self) -> None:
        r = self.client.execute(image="busybox", cmd=["sh", "-c", "cat; echo err >&2; exit 3"], stdin="in\n")
        self.assertEqual(r["status"], "runtime_error")
        self.assertEqual(r["run"]["exit_code"], 3)
        self.assertEqual(r["run"]["stdout"], "in\n")
        self.assertEqual(r["run"]["stderr"], "err\n")

    def test_run_code_in_languages(self) -> None:
        cases = [
            ("python", "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))", "2 3 4", "9\n"),
            ("javascript", "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(s.trim().toUpperCase()))",
             "shout", "SHOUT\n"),
        ]
        for language, code, stdin, want in cases:
            with self.subTest(language=language):
                r = self.client.run_code(language, code, stdin=stdin)
                self.assertEqual(r["status"], "ok", r)
                self.assertEqual(r["language"], language)
                self.assertEqual(r["run"]["stdout"], want)

    def test_run_code_extra_files_and_args(self) -> None:
        r = self.client.run_code("python", "import sys, helper\nprint(helper.twice(sys.argv[1]))",
                                 files={"helper.py": "def twice(s):\n    return s * 2\n"}, args=["ab"])
        self.assertEqual(r["run"]["stdout"], "abab\n")

    def test_errors_are_typed(self) -> None:
        cases = [
            (lambda: self.client.run_code("cobol", "x"), sandboxd.NotFound, "unknown_language", 404),
            (lambda: self.client.execute(image="nosuch", cmd=["true"]), sandboxd.NotFound, "unknown_image", 404),
            (lambda: self.client.execute(image="busybox"), sandboxd.InvalidRequest, "invalid_request", 400),
            (lambda: self.client.get_sandbox("sb-000000000000000000000000"), sandboxd.NotFound, "unknown_sandbox", 404),
            (lambda: self.client.image("nosuch"), sandboxd.NotFound, "not_found", 404),
        ]
        for call, cls, code, status in cases:
            with self.subTest(code=code):
                with self.assertRaises(cls) as ctx:
                    call()
                self.assertEqual(ctx.exception.code, code)
                self.assertEqual(ctx.exception.status, status)
                self.assertTrue(ctx.exception.message)
        with self.assertRaises(sandboxd.ConnectionError):
            sandboxd.Client("/nonexistent/sandboxd.sock").health()

    def test_stream_events(self) -> None:
        events = list(self.client.stream(image="busybox", cmd=["sh", "-c", "echo one; sleep 0.2; echo two >&2; printf '\\377'"]))
        self.assertEqual(events[-1].type, "result")
        out = b"".join(e.bytes() for e in events if e.type == "stdout")
        err = "".join(e.data for e in events if e.type == "stderr")
        self.assertEqual(out, b"one\n\xff")
        self.assertEqual(err, "two\n")
        self.assertEqual(events[-1].raw["run"]["exit_code"], 0)
        self.assertTrue(any(e.encoding == "base64" for e in events if e.type == "stdout"))

    def test_stream_language_stages(self) -> None:
        events = list(self.client.stream(sandboxd.request_for_code("python", "print('x')")))
        self.assertEqual([e.stage for e in events if e.type == "stage"], ["run"])
        self.assertEqual(events[-1].raw["status"], "ok")

    def test_interactive_stdin(self) -> None:
        with self.client.interactive(image="busybox", cmd=["sh", "-c", "read a; echo got $a; read b; echo got $b >&2; cat; exit 4"]) as run:
            run.send_stdin("first\n")
            events = run.events(timeout=30)
            seen = ""
            for e in events:  # the answer to the first line comes before the second is sent
                seen += e.data
                if "got first\n" in seen:
                    break
            self.assertEqual(seen, "got first\n")
            run.send_stdin(b"second\n")
            run.send_stdin("rest")
            run.close_stdin()
            result = run.result(timeout=30)
        self.assertEqual(result["run"]["exit_code"], 4)
        self.assertEqual(result["run"]["stdout"], "got first\nrest")
        self.assertEqual(result["run"]["stderr"], "got second\n")

    def test_interactive_signal(self) -> None:
        with self.client.interactive(image="busybox", cmd=["sh", "-c", "echo ready; exec cat"]) as run:
            for e in run.events(timeout=30):
                if e.type == "stdout":
                    break
            run.signal("SIGINT")
            result = run.result(timeout=30)
        self.assertEqual(result["run"]["signal"], "SIGINT")
        self.assertEqual(result["run"]["exit_code"], 130)

    def test_interactive_error_event(self) -> None:
        with self.client.interactive(image="nosuch", cmd=["true"]) as run:
            with self.assertRaises(sandboxd.NotFound) as ctx:
                run.result(timeout=30)
        self.assertEqual(ctx.exception.code, "unknown_image")

    def test_daemon_info(self) -> None:
        self.assertEqual(self.client.health()["status"], "ok")
        self.assertEqual(self.client.version()["api"], "v1")
        names = {i["name"] for i in self.client.images()}
        self.assertIn("busybox:latest", names)
        self.assertEqual(self.client.image("busybox")["name"], "busybox:latest")
        langs = {l["name"]: l for l in self.client.languages()}
        self.assertTrue(langs["python"]["available"])
        self.assertIn("sandboxd_sandboxes_in_flight", self.client.metrics())
        self.assertIs(self.client.ready(), True)


class Testsets(unittest.TestCase):
    def setUp(self) -> None:
        self.client = sandboxd.Client(SOCKET)

    def test_upload_run_delete(self) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name, body in [("1.in", "2 3\n"), ("1.ans", "5\n"), ("2.in", "4 4\n"), ("2.out", "9\n")]:
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body.encode()))
        summary = self.client.create_testset(buf.getvalue())
        self.assertEqual(summary["test_count"], 2)
        self.assertEqual([t["name"] for t in summary["tests"]], ["1", "2"])
        r = self.client.execute(language="python", files=[{"name": "main.py", "content":
                                "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))"}], testset=summary["id"])
        self.assertEqual([t["status"] for t in r["tests"]], ["accepted", "wrong_answer"], r)
        self.assertIn(summary["id"], [s["id"] for s in self.client.testsets()])
        self.assertEqual(self.client.testset(summary["id"])["tests"][1]["answer_bytes"], 2)
        self.client.delete_testset(summary["id"])
        with self.assertRaises(sandboxd.NotFound) as ctx:
            self.client.testset(summary["id"])
        self.assertEqual(ctx.exception.code, "unknown_testset")
        with self.assertRaises(sandboxd.InvalidRequest):
            self.client.create_testset(b"not an archive" * 100)


class OverTCP(unittest.TestCase):
    def test_token_is_sent(self) -> None:
        url, token = os.environ.get("SANDBOXD_URL", ""), os.environ.get("SANDBOXD_TEST_TOKEN", "")
        self.assertTrue(url and token, "SANDBOXD_URL and SANDBOXD_TEST_TOKEN are not set")
        tcp = sandboxd.Client(url=url, token=token)
        self.assertEqual(tcp.execute(image="busybox", cmd=["echo", "tcp"])["run"]["stdout"], "tcp\n")
        with tcp.sandbox("busybox") as sb:
            self.assertIn(sb.id, [s["id"] for s in tcp.sandboxes()])
            # The sandbox is the token's subject's: the socket's caller (uid:0) can't see it.
            with self.assertRaises(sandboxd.NotFound):
                sandboxd.Client(SOCKET).get_sandbox(sb.id)
            with sb.exec_interactive(["cat"]) as run:
                run.send_stdin("over tcp")
                run.close_stdin()
                self.assertEqual(run.result(timeout=30)["run"]["stdout"], "over tcp")
        with self.assertRaises(sandboxd.Unauthorized) as ctx:
            sandboxd.Client(url=url, token="").health()
        self.assertEqual((ctx.exception.code, ctx.exception.status), ("unauthorized", 401))
        with self.assertRaises(sandboxd.Unauthorized):
            sandboxd.Client(url=url, token="not-a-jwt").interactive(image="busybox", cmd=["true"])


class Sessions(unittest.TestCase):
    def setUp(self) -> None:
        self.client = sandboxd.Client(SOCKET)

    def test_files_and_exec(self) -> None:
        with self.client.sandbox(language="python", labels={"suite": "sdk"}) as sb:
            self.assertTrue(sb.id.startswith("sb-"))
            self.assertEqual(sb.info["language"], "python")
            entry = sb.files.write("data/in.txt", "hello")
            self.assertEqual(entry["path"], "/work/data/in.txt")
            sb.files.write("run.sh", "#!/bin/sh\necho script\n", mode=0o755)
            r = sb.exec("python3 -c \"print(open('data/in.txt').read().upper())\" > out.txt && ./run.sh")
            self.assertEqual(r["run"]["stdout"], "script\n", r)
            self.assertEqual(sb.files.read_text("out.txt"), "HELLO\n")
            self.assertEqual(sb.exec(["cat", "in.txt"], cwd="data")["run"]["stdout"], "hello")
            listing = {e["name"]: e for e in sb.files.list()}
            self.assertEqual(listing["run.sh"]["mode"], "0755")
            self.assertEqual(listing["data"]["type"], "dir")
            deep = [e["path"] for e in sb.files.list("/work", recursive=True)]
            self.assertIn("/work/data/in.txt", deep)
            sb.files.write("/tmp/t.txt", b"\x00\x01")
            self.assertEqual(sb.files.read("/tmp/t.txt"), b"\x00\x01")
            sb.files.remove("data", recursive=True)
            with self.assertRaises(sandboxd.NotFound) as ctx:
                sb.files.read("data/in.txt")
            self.assertEqual(ctx.exception.code, "not_found")
            with self.assertRaises(sandboxd.InvalidRequest):
                sb.files.read("../etc/passwd")
            self.assertIn(sb.id, [s["id"] for s in self.client.sandboxes()])
            self.assertEqual(sb.refresh()["usage"]["execs"], 2)
        with self.assertRaises(sandboxd.NotFound) as ctx:
            self.client.get_sandbox(sb.id)
        self.assertEqual(ctx.exception.code, "unknown_sandbox")

    def test_upload_download(self) -> None:
        with tempfile.TemporaryDirectory() as src, tempfile.TemporaryDirectory() as dst, \
                self.client.sandbox("busybox") as sb:
            os.makedirs(os.path.join(src, "pkg", "sub"))
            with open(os.path.join(src, "pkg", "sub", "a.txt"), "w") as f:
                f.write("alpha")
            with open(os.path.join(src, "top.bin"), "wb") as f:
                f.write(bytes(range(256)))
            os.symlink("pkg/sub/a.txt", os.path.join(src, "link"))
            up = sb.upload(src, "/work/up")
            self.assertEqual(up["path"], "/work/up")
            self.assertEqual(up["bytes"], 5 + 256)
            r = sb.exec("cd up && cat link && wc -c < top.bin && echo made > pkg/new.txt")
            self.assertEqual(r["run"]["stdout"], "alpha256\n")
            names = sb.download(dst, "/work/up")
            self.assertIn("pkg/new.txt", names)
            with open(os.path.join(dst, "pkg", "new.txt")) as f:
                self.assertEqual(f.read(), "made\n")
            with open(os.path.join(dst, "top.bin"), "rb") as f:
                self.assertEqual(f.read(), bytes(range(256)))
            self.assertEqual(os.readlink(os.path.join(dst, "link")), "pkg/sub/a.txt")

    def test_download_refuses_links_that_leave(self) -> None:
        with tempfile.TemporaryDirectory() as dst, self.client.sandbox("busybox") as sb:
            sb.files.write("ok.txt", "fine")
            for link in ("/etc/passwd", "../../outside"):
                with self.subTest(link=link):
                    sb.exec(["sh", "-c", f"rm -f bad && ln -s {link} bad"])
                    with self.assertRaisesRegex(ValueError, "points outside the directory"):
                        sb.download(dst)
            self.assertEqual(os.listdir(dst), [])

    def test_exec_stream_and_interactive(self) -> None:
        with self.client.sandbox("busybox") as sb:
            events = list(sb.exec_stream(["sh", "-c", "echo a; echo b >&2"]))
            self.assertEqual(events[-1].type, "result")
            self.assertEqual("".join(e.data for e in events if e.type == "stdout"), "a\n")
            with sb.exec_interactive(["sh", "-c", "read x; echo $x$x > twice.txt"]) as run:
                run.send_stdin("ab\n")
                run.close_stdin()
                self.assertEqual(run.result(timeout=30)["run"]["status"], "ok")
            self.assertEqual(sb.files.read_text("twice.txt"), "abab\n")

    def test_detached_exec(self) -> None:
        with self.client.sandbox("busybox") as sb:
            ex = sb.detach(["sh", "-c", "echo started; read line; echo got $line"])
            self.assertIn(ex["state"], ("running", "exited"))
            self.assertEqual([e["exec_id"] for e in sb.execs()], [ex["exec_id"]])
            with sb.attach(ex["exec_id"]) as att:
                seen = ""
                for e in att.events(timeout=30):
                    seen += e.data
                    if "started\n" in seen:
                        break
                att.send_stdin("hi\n")
                final = att.result(timeout=30)
            self.assertEqual(final["state"], "exited")
            self.assertEqual(final["result"]["stdout"], "started\ngot hi\n")
            self.assertEqual(sb.get_exec(ex["exec_id"], wait=True)["state"], "exited")
            long = sb.detach(["sleep", "60"])
            sb.kill(long["exec_id"])
            self.assertEqual(sb.get_exec(long["exec_id"])["state"], "killed")
            with self.assertRaises(sandboxd.NotFound) as ctx:
                sb.get_exec("ex-0000000000000000")
            self.assertEqual(ctx.exception.code, "unknown_exec")

    def test_network_patch(self) -> None:
        # The test daemon has egress off: no host may be allowed, but an
        # empty list is (it changes nothing for a sandbox without one).
        with self.assertRaises(sandboxd.InvalidRequest):
            self.client.sandbox("busybox", network=["x.example"])
        with self.client.sandbox("busybox") as sb:
            info = sb.set_network([])
            self.assertEqual(info["id"], sb.id)
            self.assertIs(sb.info, info)
            self.assertEqual(self.client.update_sandbox(sb.id, network={"allow": []}).id, sb.id)
            with self.assertRaises(sandboxd.InvalidRequest) as ctx:
                sb.set_network(["x.example"])
            self.assertEqual((ctx.exception.code, ctx.exception.status), ("invalid_request", 400))
            self.assertIn("egress", ctx.exception.message)
            self.assertEqual(sb.exec("echo still")["run"]["stdout"], "still\n")
        with self.assertRaises(sandboxd.NotFound):
            self.client.update_sandbox("sb-000000000000000000000000", network=[])


class Builds(unittest.TestCase):
    def setUp(self) -> None:
        self.client = sandboxd.Client(SOCKET)

    def test_build_and_run(self) -> None:
        events: list = []
        image = self.client.build_image("sdk-py-built:1", "busybox",
                                        ["echo hi > /built", ["sh", "-c", "echo out; echo err >&2"]],
                                        env={"GREETING": "hello"}, on_event=events.append)
        self.addCleanup(self.client.remove_image, "sdk-py-built:1")
        self.assertEqual(image["name"], "sdk-py-built:1")
        self.assertTrue(image["id"])
        self.assertEqual([e.type for e in events if e.type in ("step", "step_end", "result")],
                         ["step", "step_end", "step", "step_end", "result"])
        self.assertEqual([e.step for e in events if e.type == "step"], [1, 2])
        self.assertEqual(events[0].raw["cmd"], ["/bin/sh", "-c", "echo hi > /built"])
        self.assertEqual("".join(e.data for e in events if e.type == "stdout"), "out\n")
        self.assertEqual("".join(e.data for e in events if e.type == "stderr"), "err\n")
        ends = [e.raw["result"] for e in events if e.type == "step_end"]
        self.assertEqual([r["exit_code"] for r in ends], [0, 0])
        r = self.client.execute(image="sdk-py-built:1", cmd=["sh", "-c", "cat /built; echo $GREETING"])
        self.assertEqual(r["run"]["stdout"], "hi\nhello\n")

    def test_build_events_and_failures(self) -> None:
        it = self.client.build_image_events("sdk-py-failed:1", "busybox", ["echo one", "exit 3", "echo never"])
        seen = []
        with self.assertRaises(sandboxd.InvalidRequest) as ctx:
            for ev in it:
                seen.append(ev.type)
        self.assertEqual(ctx.exception.code, "invalid_request")
        self.assertIn("step 2", ctx.exception.message)
        self.assertEqual(seen, ["step", "stdout", "step_end", "step", "step_end"])
        with self.assertRaises(sandboxd.NotFound):
            self.client.image("sdk-py-failed:1")
        # Refused before the first step: an ordinary error answer.
        with self.assertRaises(sandboxd.NotFound) as ctx2:
            self.client.build_image("sdk-py-failed:1", "nosuch", ["true"])
        self.assertEqual(ctx2.exception.code, "unknown_image")
        with self.assertRaises(sandboxd.InvalidRequest):
            self.client.build_image("sdk-py-failed:1", "busybox", [])


if __name__ == "__main__":
    unittest.main()
