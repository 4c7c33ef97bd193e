"""The Spark session onramp, dbt-spark and the Spark loader share, one per process.

dbt-spark's `session` method calls `SparkSession.builder.getOrCreate()`, which returns the session
already running in the process: starting ours first (warehouse and Derby metastore under
`$ONRAMP_HOME/spark`, UTC, quiet logs) is how dbt gets the same configuration. A session costs
seconds to start, so it is made once and reused.

With SPARK_REMOTE set (sc://host:15002) pyspark's `getOrCreate()` returns a Spark Connect session
instead: no local JVM, no local warehouse; the server's catalog and configuration apply, and dbt's
session method picks up the same remote session.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from onramp.errors import OnrampError
from onramp.settings import Settings

log = logging.getLogger(__name__)

JAVA_HINT = "install Java 17 or 21 (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"


class SparkUnavailable(OnrampError):
    """Spark cannot start here (no Java, or pyspark not installed); one line says what to do."""


def java_problem() -> str | None:
    """Why Spark cannot start on this machine, or None when Java and pyspark are present."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed: pip install 'onramp[spark]'"
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        return f"no Java runtime found: {JAVA_HINT}"
    try:
        subprocess.run([str(java), "-version"], capture_output=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"java -version failed ({exc}): {JAVA_HINT}"
    return None


# Spark's JVM logs to stderr from its first second (the default profile notice, WARNs about the
# host name), before setLogLevel can run: this file, passed at JVM start, keeps only errors. The
# root level stays WARN so Spark does not announce "Setting default log level" either. As in Spark's
# own defaults, the metastore's "database already exists" (from `create ... if not exists`) is
# not an error; a failed task's stack is not printed either, since the job's failure reaches
# Python as an exception that the caller reports in one line.
LOG4J2_PROPERTIES = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.filter.threshold.type = ThresholdFilter
appender.console.filter.threshold.level = error
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.metastore.name = org.apache.hadoop.hive.metastore.RetryingHMSHandler
logger.metastore.level = fatal
logger.executor.name = org.apache.spark.executor.Executor
logger.executor.level = fatal
logger.tasks.name = org.apache.spark.scheduler.TaskSetManager
logger.tasks.level = fatal
"""


# Every Spark query compiles Java classes of its own (whole-stage code generation), and the JVM's
# optimizing JIT compiler (C2) recompiles whatever gets warm: on a daily incremental build, where
# each of ~40 queries runs a second or two, C2 took more CPU than the queries (49 s against 18 s
# of tasks), on the same cores. Ten times the default C2 thresholds leave briefly used code to the
# quick first tier (C1) while the per-event loops of a full build still reach C2 within seconds
# (C1 alone made those three times slower). Measured in docs/spark.md, "Per-model overhead".
JIT_OPTIONS = (
    "-XX:Tier4InvocationThreshold=50000 -XX:Tier4MinInvocationThreshold=6000 "
    "-XX:Tier4CompileThreshold=150000 -XX:Tier4BackEdgeThreshold=400000 "
    "-XX:ReservedCodeCacheSize=256m"
)


def spark_conf(settings: Settings) -> dict[str, str]:
    """The session's configuration: local warehouse and metastore, UTC, few shuffle partitions."""
    root = settings.spark_dir
    log_config = root / "log4j2.properties"
    return {
        "spark.sql.warehouse.dir": str(root / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": (
            f"-Dderby.system.home={root} -Dlog4j2.configurationFile=file:{log_config} "
            + JIT_OPTIONS
        ),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # the default 200 shuffle partitions are tiny tasks on a laptop's few cores
        "spark.sql.shuffle.partitions": "8",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # a partitioned table's day directories are listed by the driver: above the default
        # threshold (32 paths) Spark runs a listing job of one task per directory instead,
        # about a second for what a local listing does in milliseconds
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "4096",
        # local mode runs every task in the driver: its heap is the whole engine's memory
        "spark.driver.memory": os.environ.get("ONRAMP_SPARK_DRIVER_MEMORY") or "2g",
    }


@functools.cache
def _session(master: str, spark_dir: str, conf_items: tuple[tuple[str, str], ...]) -> Any:
    from pyspark.sql import SparkSession

    Path(spark_dir).mkdir(parents=True, exist_ok=True)
    Path(spark_dir, "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    builder = SparkSession.builder.master(master).appName("onramp")
    for key, value in conf_items:
        builder = builder.config(key, value)
    try:
        session = builder.enableHiveSupport().getOrCreate()
    except Exception as exc:  # py4j / JVM start errors carry pages of Java stack
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailable(f"Spark did not start: {first}") from exc
    session.sparkContext.setLogLevel("ERROR")
    return session


@functools.cache
def _remote_session(url: str) -> Any:
    """A Spark Connect session (pyspark's builder reads SPARK_REMOTE itself)."""
    from pyspark.sql import SparkSession

    try:
        return SparkSession.builder.getOrCreate()
    except Exception as exc:  # grpc errors carry pages of detail
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SparkUnavailable(f"Spark Connect at {url} did not answer: {first}") from exc


def spark_session(settings: Settings | None = None) -> Any:
    """The process's SparkSession for the configured warehouse (started on first use)."""
    settings = settings or Settings.from_env()
    if os.environ.get("SPARK_REMOTE"):
        return _remote_session(os.environ["SPARK_REMOTE"])
    problem = java_problem()
    if problem:
        raise SparkUnavailable(f"the Spark warehouse needs Java: {problem}")
    conf = tuple(sorted(spark_conf(settings).items()))
    return _session(settings.spark_master, str(settings.spark_dir), conf)
