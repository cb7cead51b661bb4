"""A seccomp filter for the sandbox: a few system calls that no program here needs are refused.

bubblewrap loads it (`--seccomp FD`) just before the program starts. Refused, with EPERM:
io_uring, bpf, perf_event_open, userfaultfd, the kernel keyring and kexec (the interfaces most
often behind kernel privilege escalations) and the kernel's log (syslog). Sockets of the
AF_VSOCK family are refused too (EAFNOSUPPORT): network namespaces do not confine them, and on
a virtual machine they reach the hypervisor's host (Docker's default profile refuses them as
well). On x86_64 the 32-bit and x32 system call ABIs are refused whole: their numbers differ.
Architectures other than x86_64 and aarch64 get no filter (`program()` returns None).
"""

from __future__ import annotations

import errno
import platform
import struct

# Linux's BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06
_ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data
_X32_BIT = 0x40000000
_AF_VSOCK = 40

# machine: (AUDIT_ARCH_*, socket, the refused system calls)
REFUSED = (
    *("io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open", "userfaultfd"),
    *("keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "syslog"),
)
TABLES = {
    "x86_64": (
        0xC000003E,
        41,
        {
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321,
            "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
            "request_key": 249, "kexec_load": 246, "kexec_file_load": 320, "syslog": 103,
        },
    ),
    "aarch64": (
        0xC00000B7,
        198,
        {
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280,
            "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217,
            "request_key": 218, "kexec_load": 104, "kexec_file_load": 294, "syslog": 116,
        },
    ),
}  # fmt: skip


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter as bubblewrap reads it (an array of struct sock_filter), or None here."""
    table = TABLES.get(machine or platform.machine())
    if table is None:
        return None
    arch, socket_nr, numbers = table
    refused = [numbers[name] for name in REFUSED]
    # Layout: arch check; the number checks (each jumps to EPERM); socket's family check.
    ops = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, arch, jt=1),
        _op(_RET_K, _ERRNO | errno.ENOSYS),  # another ABI
        _op(_LD_W_ABS, _NR),
    ]
    checks = [(_JGE_K, _X32_BIT)] if arch == 0xC000003E else []  # x86_64: refuse the x32 ABI
    checks += [(_JEQ_K, nr) for nr in refused]
    # After the checks: [RET ALLOW-or-socket jump], [socket block], [RET EPERM].
    # Jump targets, counted from the instruction after each check.
    tail = [
        _op(_JEQ_K, socket_nr, jt=1),  # socket(): look at its family
        _op(_RET_K, _ALLOW),
        _op(_LD_W_ABS, _ARG0),
        _op(_JEQ_K, _AF_VSOCK, jt=1),
        _op(_RET_K, _ALLOW),
        _op(_RET_K, _ERRNO | errno.EAFNOSUPPORT),
        _op(_RET_K, _ERRNO | errno.EPERM),
    ]
    for i, (code, k) in enumerate(checks):
        to_eperm = (len(checks) - i - 1) + len(tail) - 1
        ops.append(_op(code, k, jt=to_eperm))
    return b"".join(ops + tail)
