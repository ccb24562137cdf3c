#!/usr/bin/python3
"""A minimal CRI client, as kubelet calls a CRI runtime (tests/integration/
clients/cri.bats drives containerd's CRI plugin with it).

    cri.py --sock SOCK [--timeout S] [--stubs DIR] COMMAND ARGS...

The gRPC stubs are generated from api.proto beside this file (Debian's
python3-grpc-tools) into --stubs DIR when it has none yet, else into a
temporary directory. Configs are the CRI's messages as JSON (field names as
in api.proto). Every call has a deadline (--timeout, seconds); a failed
call prints the gRPC status and exits 125. exec-sync exits with the command's
exit code (its stdout and stderr as they came).

exec and attach use the CRI's streaming server as kubectl does through the
kubelet: the URL that Exec/Attach return, opened as a WebSocket with the
v4.channel.k8s.io protocol (Debian's python3-websocket): every message is a
channel byte (0 stdin, 1 stdout, 2 stderr, 3 status) and its data. exec
sends --stdin, prints stdout and stderr as they came and exits with the
command's exit code (from the status channel); attach sends --stdin and
reads stdout until --until appears in it, then detaches.
"""

import argparse
import importlib
import os
import shutil
import sys
import tempfile

import grpc
from google.protobuf import json_format

STDIN, STDOUT, STDERR, STATUS = 0, 1, 2, 3

HERE = os.path.dirname(os.path.abspath(__file__))


def load_stubs(stubs_dir):
    """Import api_pb2 and api_pb2_grpc, generating them first if needed."""
    tmp = None
    if not stubs_dir:
        tmp = stubs_dir = tempfile.mkdtemp(prefix="cri-stubs.")
    try:
        if not os.path.exists(os.path.join(stubs_dir, "api_pb2_grpc.py")):
            from grpc_tools import protoc

            os.makedirs(stubs_dir, exist_ok=True)
            rc = protoc.main(["protoc", "-I" + HERE, "--python_out=" + stubs_dir,
                              "--grpc_python_out=" + stubs_dir,
                              os.path.join(HERE, "api.proto")])
            if rc != 0:
                sys.exit("cri.py: protoc failed on %s/api.proto" % HERE)
        sys.path.insert(0, stubs_dir)
        pb = importlib.import_module("api_pb2")
        pb_grpc = importlib.import_module("api_pb2_grpc")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return pb, pb_grpc


def to_json(msg):
    # Defaults included: a state of 0 (SANDBOX_READY, CONTAINER_CREATED) is
    # printed, not left out.
    return json_format.MessageToJson(msg, preserving_proto_field_name=True,
                                     including_default_value_fields=True,
                                     indent=None, sort_keys=True)


def from_json_file(path, msg):
    with open(path) as f:
        return json_format.Parse(f.read(), msg)


def ws_open(url, timeout):
    """The streaming URL as a v4.channel.k8s.io WebSocket."""
    import websocket

    ws_url = "ws" + url[len("http"):] if url.startswith("http") else url
    return websocket.create_connection(ws_url, timeout=timeout,
                                       subprotocols=["v4.channel.k8s.io"])


def ws_messages(ws):
    """(channel, data) for each message until the server closes."""
    import websocket

    while True:
        try:
            opcode, data = ws.recv_data()
        except websocket.WebSocketConnectionClosedException:
            return
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return
        if data:
            yield data[0], data[1:]


def exit_code_of(status):
    """The exit code in a v4 status message (a metav1.Status as JSON)."""
    import json

    if not status:
        return 0
    st = json.loads(status)
    if st.get("status") == "Success":
        return 0
    for cause in st.get("details", {}).get("causes", []):
        if cause.get("reason") == "ExitCode":
            return int(cause["message"])
    print("cri.py exec: %s" % st.get("message", status), file=sys.stderr)
    return 126


def ws_start(url, stdin, timeout):
    """The stream, with STDIN (if any) sent on the stdin channel."""
    ws = ws_open(url, timeout)
    if stdin is not None:
        ws.send_binary(bytes([STDIN]) + stdin.encode())
    return ws


def stream_exec(url, stdin, timeout):
    ws = ws_start(url, stdin, timeout)
    status = b""
    for ch, data in ws_messages(ws):
        if ch == STDOUT:
            sys.stdout.buffer.write(data)
        elif ch == STDERR:
            sys.stderr.buffer.write(data)
        elif ch == STATUS:
            status += data
    sys.stdout.flush()
    ws.close()
    return exit_code_of(status)


def stream_attach(url, stdin, until, timeout):
    ws = ws_start(url, stdin, timeout)
    seen = b""
    for ch, data in ws_messages(ws):
        if ch == STDOUT:
            seen += data
            if until.encode() in seen:
                break
    ws.close()
    sys.stdout.buffer.write(seen)
    return 0 if until.encode() in seen else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sock", required=True, help="the CRI socket (unix path)")
    ap.add_argument("--timeout", type=float, default=120, help="deadline of a call, seconds")
    ap.add_argument("--stubs", help="directory of the generated stubs (made if missing)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("version")
    p = sub.add_parser("run-pod", help="RunPodSandbox; prints the pod id")
    p.add_argument("config", help="PodSandboxConfig JSON")
    p.add_argument("--handler", default="", help="runtime handler (RuntimeClass)")
    for name in ("stop-pod", "rm-pod"):
        sub.add_parser(name).add_argument("pod")
    sub.add_parser("pod-status", help="PodSandboxStatus (verbose) as JSON").add_argument("pod")
    sub.add_parser("pods", help="ListPodSandbox as JSON")
    p = sub.add_parser("create", help="CreateContainer; prints the container id")
    p.add_argument("pod")
    p.add_argument("config", help="ContainerConfig JSON")
    p.add_argument("pod_config", help="the pod's PodSandboxConfig JSON")
    for name in ("start", "rm", "stats", "reopen-log"):
        sub.add_parser(name).add_argument("id")
    p = sub.add_parser("stop", help="StopContainer with a grace period")
    p.add_argument("id")
    p.add_argument("--grace", type=int, default=0, help="seconds before SIGKILL")
    sub.add_parser("status", help="ContainerStatus (verbose) as JSON").add_argument("id")
    p = sub.add_parser("ps", help="ListContainers as JSON")
    p.add_argument("--pod", default="")
    p = sub.add_parser("exec-sync", help="ExecSync: the command's output and exit code")
    p.add_argument("--exec-timeout", type=int, default=0, help="the command's own timeout")
    p.add_argument("id")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("exec", help="Exec, streamed: output, exit code")
    p.add_argument("--stdin", help="text sent on stdin")
    p.add_argument("--tty", action="store_true")
    p.add_argument("id")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    p = sub.add_parser("attach", help="Attach, streamed: stdout until a string")
    p.add_argument("--stdin", help="text sent on stdin")
    p.add_argument("--until", required=True, help="detach once stdout has it")
    p.add_argument("id")
    sub.add_parser("pod-stats", help="PodSandboxStats as JSON").add_argument("pod")
    sub.add_parser("image-status").add_argument("image")
    sub.add_parser("images")
    args = ap.parse_args()

    pb, pb_grpc = load_stubs(args.stubs)
    channel = grpc.insecure_channel("unix:" + args.sock)
    rt = pb_grpc.RuntimeServiceStub(channel)
    img = pb_grpc.ImageServiceStub(channel)
    kw = {"timeout": args.timeout}
    c = args.cmd
    try:
        if c == "version":
            print(to_json(rt.Version(pb.VersionRequest(version="v1"), **kw)))
        elif c == "run-pod":
            cfg = from_json_file(args.config, pb.PodSandboxConfig())
            r = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=args.handler),
                                 **kw)
            print(r.pod_sandbox_id)
        elif c == "stop-pod":
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=args.pod), **kw)
        elif c == "rm-pod":
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=args.pod), **kw)
        elif c == "pod-status":
            r = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=args.pod,
                                                               verbose=True), **kw)
            print(to_json(r))
        elif c == "pods":
            print(to_json(rt.ListPodSandbox(pb.ListPodSandboxRequest(), **kw)))
        elif c == "create":
            cfg = from_json_file(args.config, pb.ContainerConfig())
            pod_cfg = from_json_file(args.pod_config, pb.PodSandboxConfig())
            r = rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=args.pod, config=cfg,
                                                             sandbox_config=pod_cfg), **kw)
            print(r.container_id)
        elif c == "start":
            rt.StartContainer(pb.StartContainerRequest(container_id=args.id), **kw)
        elif c == "stop":
            rt.StopContainer(pb.StopContainerRequest(container_id=args.id, timeout=args.grace),
                             **kw)
        elif c == "rm":
            rt.RemoveContainer(pb.RemoveContainerRequest(container_id=args.id), **kw)
        elif c == "status":
            r = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=args.id, verbose=True),
                                   **kw)
            print(to_json(r))
        elif c == "stats":
            print(to_json(rt.ContainerStats(pb.ContainerStatsRequest(container_id=args.id), **kw)))
        elif c == "reopen-log":
            rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=args.id), **kw)
        elif c == "ps":
            f = pb.ContainerFilter(pod_sandbox_id=args.pod)
            print(to_json(rt.ListContainers(pb.ListContainersRequest(filter=f), **kw)))
        elif c == "exec-sync":
            r = rt.ExecSync(pb.ExecSyncRequest(container_id=args.id, cmd=args.argv,
                                               timeout=args.exec_timeout), **kw)
            sys.stdout.buffer.write(r.stdout)
            sys.stderr.buffer.write(r.stderr)
            return r.exit_code
        elif c == "exec":
            # With a TTY, stdin is always asked for and kept open: over a
            # WebSocket, containerd 1.6 gives an exec a stdin stream even
            # when none was asked for, which ends at once, and with a TTY
            # the end of stdin closes the output (pkg/cri/io ExecIO.Attach).
            r = rt.Exec(pb.ExecRequest(container_id=args.id, cmd=args.argv, tty=args.tty,
                                       stdin=args.stdin is not None or args.tty, stdout=True,
                                       stderr=not args.tty), **kw)
            return stream_exec(r.url, args.stdin, args.timeout)
        elif c == "attach":
            r = rt.Attach(pb.AttachRequest(container_id=args.id, stdin=args.stdin is not None,
                                           stdout=True), **kw)
            return stream_attach(r.url, args.stdin, args.until, args.timeout)
        elif c == "pod-stats":
            r = rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=args.pod), **kw)
            print(to_json(r))
        elif c == "image-status":
            r = img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=args.image)), **kw)
            print(to_json(r))
        elif c == "images":
            print(to_json(img.ListImages(pb.ListImagesRequest(), **kw)))
    except grpc.RpcError as e:
        print("cri.py %s: %s: %s" % (c, e.code().name, e.details()), file=sys.stderr)
        return 125
    return 0


if __name__ == "__main__":
    sys.exit(main())
