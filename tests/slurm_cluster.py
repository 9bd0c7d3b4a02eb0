"""A throwaway single-node SLURM cluster on localhost, for the cluster tests.

``LocalSlurm`` writes a minimal ``slurm.conf`` into a temporary folder, starts
``munged``, ``slurmctld`` and ``slurmd`` as child processes and stops exactly
those processes (by process id) on exit. There is no accounting database:
``sacct`` does not work, so the Snakemake profile asks ``squeue`` for job states,
and ``MinJobAge`` keeps finished jobs visible to ``squeue`` long enough.

Clients (``sbatch``, ``squeue``, ``sinfo``, and Snakemake's SLURM plugin, which
calls them) find the cluster through the ``SLURM_CONF`` variable in
``LocalSlurm.env``. Inside a job, Snakemake's jobstep plugin drops every
``SLURM_*`` variable before it calls ``srun``, so ``srun`` reads the default
``/etc/slurm/slurm.conf``, as on a real cluster: for the duration of the cluster,
that path is a symbolic link to the generated file. An existing
``/etc/slurm/slurm.conf`` (a real SLURM installation) is never touched: the
cluster refuses to start instead.

The node can advertise a *fake* GPU (a GRES backed by ``/dev/null``) so that SLURM
accepts and schedules a job that asks for one; nothing on it can use a GPU.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

DEBIAN_PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "srun")
# Seconds a finished job stays visible to squeue. The SLURM plugin only trusts
# squeue when this is at least 3x its first status check
# (slurm-init-seconds-before-status-checks).
MIN_JOB_AGE = 600


def missing_programs() -> list[str]:
    """The SLURM and MUNGE programs not found on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"
    return [p for p in PROGRAMS if shutil.which(p, path=path) is None]


def unavailable_reason() -> str | None:
    """Why a LocalSlurm cannot run here, or None after making sure it can.

    Installs the Debian packages with apt-get where they are missing and this user
    is root.
    """
    if os.geteuid() != 0:
        return "not root (the SLURM daemons and apt-get need root)"
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists: not replacing a real SLURM configuration"
    if not missing_programs():
        return None
    if shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it with"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}"
    missing = missing_programs()
    return f"still missing after apt-get install: {' '.join(missing)}" if missing else None


class LocalSlurm:
    """A single-node SLURM cluster on localhost, started and stopped by this object.

    Parameters
    ----------
    cpus : int
        CPUs the node advertises (SLURM uses these numbers as given,
        ``SlurmdParameters=config_overrides``), so that a profile's requests for
        more CPUs or memory than this machine has are still scheduled.
    memory_mb : int
        Memory the node advertises.
    fake_gpu : bool
        Whether the node advertises one GPU (a GRES ``gpu`` backed by ``/dev/null``).
    """

    def __init__(self, cpus: int = 16, memory_mb: int = 256_000, fake_gpu: bool = True) -> None:
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.fake_gpu = fake_gpu
        self.root: Path | None = None
        self.env: dict[str, str] = {}
        self._processes: list[subprocess.Popen] = []
        self._linked_system_conf = False

    # -- configuration -------------------------------------------------------------

    def _write_config(self) -> Path:
        root = self.root
        for folder in ("spool", "state", "log", "munge-socket"):
            (root / folder).mkdir()
        (root / "munge-key").mkdir(mode=0o700)
        key = root / "munge-key" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        gres = " Gres=gpu:1" if self.fake_gpu else ""
        conf = root / "slurm.conf"
        conf.write_text(
            f"""\
ClusterName=trainmaptest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge-socket/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge={MIN_JOB_AGE}
GresTypes=gpu
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmdSpoolDir={root}/spool
StateSaveLocation={root}/state
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
NodeName=localhost CPUs={self.cpus} RealMemory={self.memory_mb}{gres} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        )
        if self.fake_gpu:
            # /dev/null as the device file: SLURM counts and allocates the GPU,
            # nothing can compute on it.
            (root / "gres.conf").write_text(
                "AutoDetect=off\nNodeName=localhost Name=gpu File=/dev/null\n"
            )
        return conf

    # -- processes -----------------------------------------------------------------

    def _start(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")  # noqa: SIM115 (closed by the child)
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        self._processes.append(process)
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{self.log(name)}")

    def log(self, name: str) -> str:
        """The console output of one daemon (munged, slurmctld, slurmd)."""
        path = self.root / "log" / f"{name}.out"
        return path.read_text() if path.exists() else ""

    def run(self, *command: str) -> str:
        """Run a SLURM client command against this cluster; return its stdout."""
        done = subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
        return done.stdout

    def _wait_until_idle(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline:
            try:
                state = self.run("sinfo", "--noheader", "--format=%T", "--nodes=localhost").strip()
            except RuntimeError as error:
                state = str(error)
            if state == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(
            f"the node did not become idle in {timeout} s (last state: {state!r})\n"
            f"slurmctld:\n{self.log('slurmctld')[-2000:]}\nslurmd:\n{self.log('slurmd')[-2000:]}"
        )

    def start(self) -> LocalSlurm:
        """Write the configuration, start the daemons, wait until the node is idle."""
        self.root = Path(tempfile.mkdtemp(prefix="trainmap-slurm-"))
        self.root.chmod(0o755)
        conf = self._write_config()
        if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
            self.stop()
            raise RuntimeError(f"{SYSTEM_CONF} exists: not replacing a real SLURM configuration")
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(conf)
        self._linked_system_conf = True
        path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
        self.env = {**os.environ, "SLURM_CONF": str(conf), "PATH": path}
        try:
            self._start(
                "munged",
                [
                    "munged",
                    "--foreground",
                    "--force",
                    f"--socket={self.root}/munge-socket/munge.socket",
                    f"--key-file={self.root}/munge-key/munge.key",
                    f"--pid-file={self.root}/munged.pid",
                    f"--seed-file={self.root}/munge-key/munged.seed",
                    f"--log-file={self.root}/log/munged.log",
                ],
            )
            self._start("slurmctld", ["slurmctld", "-D", "-i", "-f", str(conf)])
            self._start("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(conf)])
            self._wait_until_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the daemons this object started (newest first) and delete the folder."""
        if self._processes:
            try:
                self.run("scancel", "--user", str(os.geteuid()))
            except (RuntimeError, OSError, subprocess.TimeoutExpired):
                pass  # the controller may already be gone
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self._processes.clear()
        if self._linked_system_conf:
            SYSTEM_CONF.unlink(missing_ok=True)
            self._linked_system_conf = False
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
