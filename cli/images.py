"""Image commands: images, image import|rm|inspect."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, TypeVar

from shoal.agent.v1 import agent_pb2 as apb
from shoal.agent.v1 import agent_pb2_grpc
from shoal.agent.v1 import images_pb2 as ipb
from shoal.controlplane.v1 import image_service_pb2 as cpb

from cli import output
from cli.client import CliError
from cli.quantity import format_bytes
from cli.registry import registry_of, stored_login

if TYPE_CHECKING:
    from cli.cluster import Cluster

CHUNK = 1 << 20
T = TypeVar("T")


def _repo_tag(name: str) -> tuple[str, str]:
    repo, _, tag = name.rpartition(":")
    return (repo, tag) if "/" not in tag else (name, "")


def cmd_images(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    images = stub.ListImages(apb.ListImagesRequest(all=args.all)).images
    if args.output != "table":
        output.emit(list(images), args.output)
        return 0
    rows = []
    for image in images:
        for name in image.repo_tags or ["<none>:<none>"]:
            repo, tag = _repo_tag(name)
            created = output.since(image.created_at.seconds) + " ago" if image.created_at.seconds else "-"
            rows.append([repo, tag, image.id.removeprefix("sha256:")[:12], created, format_bytes(image.size_bytes)])
    output.table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows)
    return 0


def file_chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def archive_chunks(path: str, tag: str = "") -> Iterator[apb.ImportImageRequest]:
    yield apb.ImportImageRequest(header=apb.ImportImageHeader(tag=tag, filename=os.path.basename(path)))
    for chunk in file_chunks(path):
        yield apb.ImportImageRequest(chunk=chunk)


def _loaded(image: ipb.Image) -> str:
    return f"Loaded image {image.id.removeprefix('sha256:')[:12]} ({', '.join(image.repo_tags) or 'untagged'})"


def _check_file(path: str) -> None:
    if not os.path.isfile(path):
        raise CliError(f"{path}: no such file")


def cmd_import(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    _check_file(args.file)
    if args.node:
        raise CliError("--node: only with a control plane (--server); this talks to one agent", 2)
    images = stub.ImportImage(archive_chunks(args.file, args.tag or "")).images
    if args.output != "table":
        output.emit(list(images), args.output)
        return 0
    for image in images:
        print(_loaded(image))
    return 0


def cmd_import_cluster(cluster: Cluster, args: argparse.Namespace) -> int:
    """Through the control plane into every ready node (or each --node); fails if any node failed."""
    _check_file(args.file)
    header = cpb.ClusterImportHeader(tag=args.tag or "", filename=os.path.basename(args.file), nodes=args.node)
    requests = itertools.chain([cpb.ClusterImportRequest(header=header)],
                               (cpb.ClusterImportRequest(chunk=chunk) for chunk in file_chunks(args.file)))
    nodes = cluster.images.ImportImage(requests).nodes
    if args.output != "table":
        output.emit(list(nodes), args.output)
    else:
        for node in nodes:
            for image in node.images:
                print(f"{node.node}: {_loaded(image)}")
    failed = [node for node in nodes if node.error]
    for node in failed:
        print(f"Error: {node.node}: {node.error}", file=sys.stderr)
    return 1 if failed else 0


def cmd_pull(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    image = pull(stub, args.image, show=args.output == "table")
    if args.output != "table":
        output.emit(image, args.output)
        return 0
    print(f"Pulled {args.image} (id {image.id.removeprefix('sha256:')[:12]}, {format_bytes(image.size_bytes)})")
    return 0


def pull(stub: agent_pb2_grpc.AgentStub, reference: str, show: bool = True) -> ipb.Image:
    request = apb.PullImageRequest(reference=reference)
    _attach_login(request, reference)
    for update in _transfer(stub.PullImage(request), "Downloading", "Pull complete", show):
        if update.HasField("image"):
            pulled: ipb.Image = update.image
            return pulled
    raise CliError("the pull ended without an image")


def cmd_push(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    request = apb.PushImageRequest(reference=args.image)
    _attach_login(request, args.image)
    for update in _transfer(stub.PushImage(request), "Pushing", "Pushed", args.output == "table"):
        if update.manifest_digest:
            print(f"{args.image}: digest: {update.manifest_digest}")
            return 0
    raise CliError("the push ended without a digest")


def cmd_save(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    """To --file, else to stdout when that is not a terminal (`clusterctl image save busybox > b.tar`)."""
    if not args.file and sys.stdout.isatty():
        raise CliError("--file: where to write the archive (or redirect the output)", 2)
    chunks = stub.SaveImage(apb.SaveImageRequest(images=args.images, format=args.format))
    if not args.file:
        for chunk in chunks:
            sys.stdout.buffer.write(chunk.data)
        return 0
    temporary = args.file + ".part"
    try:
        with open(temporary, "wb") as f:
            for chunk in chunks:
                f.write(chunk.data)
        os.replace(temporary, args.file)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return 0


def cmd_prune(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    pruned = stub.PruneImages(apb.PruneImagesRequest(all=args.all))
    if args.output != "table":
        output.emit(pruned, args.output)
        return 0
    for image in pruned.deleted:
        print(f"Deleted: {image.id}" + (f" ({', '.join(image.repo_tags)})" if image.repo_tags else ""))
    print(f"Total reclaimed space: {format_bytes(pruned.reclaimed_bytes)}")
    return 0


def cmd_pin(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    for ref in args.images:
        stub.PinImage(apb.PinImageRequest(image=ref, pinned=args.verb == "pin"))
        print(ref)
    return 0


def cmd_tag(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    stub.TagImage(apb.TagImageRequest(image=args.source, name=args.target))
    return 0


def _attach_login(request: apb.PullImageRequest | apb.PushImageRequest, reference: str) -> None:
    """As the Docker CLI does: the stored credentials for the image's registry go with the request."""
    login = stored_login(registry_of(reference))
    if login:
        request.auth.username, request.auth.password = login


def _transfer(updates: Iterator[T], doing: str, done: str, show: bool) -> Iterator[T]:
    """Docker's transfer output: a line per blob as it completes (live figures on a terminal); the
    updates are passed on for their final message."""
    live = sys.stdout.isatty() and show
    finished: set[str] = set()
    for update in updates:
        blob, current, total = update.layer, update.current, update.total  # type: ignore[attr-defined]
        short = blob.removeprefix("sha256:")[:12]
        if blob and total and current >= total and blob not in finished:
            finished.add(blob)
            if show:
                print(f"\r{short}: {done} ({format_bytes(total)})" + " " * 20, flush=True)
        elif blob and live:
            print(f"\r{short}: {doing} {format_bytes(current)}/{format_bytes(total)}", end="", flush=True)
        yield update


def cmd_rm(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    for ref in args.images:
        response = stub.RemoveImage(apb.RemoveImageRequest(image=ref))
        for name in response.untagged:
            print(f"Untagged: {name}")
        for image_id in response.deleted:
            print(f"Deleted: {image_id}")
    return 0


def cmd_inspect(stub: agent_pb2_grpc.AgentStub, args: argparse.Namespace) -> int:
    found = [stub.InspectImage(apb.InspectImageRequest(image=ref)).image for ref in args.images]
    output.emit(found, "yaml" if args.output == "yaml" else "json")
    return 0


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    images = commands.add_parser("images", help="list images")
    images.add_argument("-a", "--all", action="store_true", help="also the build cache's untagged images")
    images.set_defaults(handler=cmd_images)
    image = commands.add_parser("image", help="manage images")
    verbs = image.add_subparsers(dest="verb", required=True,
                                 metavar="{import,pull,push,save,tag,prune,pin,unpin,ls,rm,inspect}")
    load = verbs.add_parser("import", help="import an OCI layout tar or a docker save archive "
                                           "(with a control plane: into every ready node)")
    load.add_argument("file")
    load.add_argument("--tag", help="also name the image NAME:TAG")
    load.add_argument("--node", action="append", default=[], help="only into this node (repeatable; cluster only)")
    load.set_defaults(handler=cmd_import, cluster_handler=cmd_import_cluster, target="auto")
    pull = verbs.add_parser("pull", help="pull an image from a registry (credentials: clusterctl registry login)")
    pull.add_argument("image")
    pull.set_defaults(handler=cmd_pull)
    push = verbs.add_parser("push", help="push an image to the registry its name points at (image tag first)")
    push.add_argument("image")
    push.set_defaults(handler=cmd_push)
    saver = verbs.add_parser("save", help="write images to a docker save archive or an OCI layout tar")
    saver.add_argument("images", nargs="+")
    saver.add_argument("-f", "--file", help="the archive to write (default: stdout, when redirected)")
    saver.add_argument("--format", choices=("docker", "oci"), default="docker",
                       help="docker (`docker save`'s format, the default) or oci (an OCI image layout)")
    saver.set_defaults(handler=cmd_save)
    prune = verbs.add_parser("prune", help="remove images no container uses: untagged ones, or all with -a")
    prune.add_argument("-a", "--all", action="store_true", help="also tagged images (never pinned or used ones)")
    prune.set_defaults(handler=cmd_prune)
    for verb, text in (("pin", "keep images through garbage collection"), ("unpin", "let them be collected again")):
        pin = verbs.add_parser(verb, help=text)
        pin.add_argument("images", nargs="+")
        pin.set_defaults(handler=cmd_pin)
    tag = verbs.add_parser("tag", help="give an image another name, e.g. localhost:5000/team/app:v1")
    tag.add_argument("source")
    tag.add_argument("target")
    tag.set_defaults(handler=cmd_tag)
    listing = verbs.add_parser("ls", help="list images")
    listing.add_argument("-a", "--all", action="store_true", help="also the build cache's untagged images")
    listing.set_defaults(handler=cmd_images)
    remove = verbs.add_parser("rm", help="remove images (refused while a container uses them)")
    remove.add_argument("images", nargs="+")
    remove.set_defaults(handler=cmd_rm)
    inspect = verbs.add_parser("inspect", help="show images in full")
    inspect.add_argument("images", nargs="+")
    inspect.set_defaults(handler=cmd_inspect)
