"""The Redis Cluster side of :class:`~tsbandit.stores.redis_store.RedisStore`: the steps of
:class:`~tsbandit.stores.redis_conn.RedisConnection` that differ on a Cluster.

All keys of a bandit share the hash tag ``{bandit}``, so a bandit lives in one slot and every
script runs on one node: a script is routed by its first key, ``WAIT`` is sent on a connection to
that slot's primary, and a failover (the replica that took over is the new primary) is followed
by one refresh of the slot map.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.exceptions import (
    AskError,
    MovedError,
    RedisClusterException,
    RedisError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)
from redis.retry import Retry

from ..errors import StoreUnavailableError
from .redis_conn import RedisConnection

__all__ = ["ClusterConnection"]

_ALL_SLOTS = 16384


class ClusterConnection(RedisConnection):
    """The client of a Redis Cluster (``redis.cluster.RedisCluster``), built lazily."""

    def _build(self, retry: Retry) -> Any:
        from redis.cluster import ClusterNode, RedisCluster

        startup = []
        for node in self.extra_nodes:
            host, _, port = node.rpartition(":")
            startup.append(ClusterNode(host or node, int(port or 6379)))
        return RedisCluster(url=self.client_url, startup_nodes=startup, retry=retry,
                            **self.options)

    def hgetall(self, key: str) -> Mapping[bytes, bytes]:
        return self.run(lambda c: c.hgetall(key))

    def hgetall_many(self, keys: list[str]) -> list[Mapping[bytes, bytes]]:
        """Several hashes in one round trip to every node that holds some of them: the
        commands are written to all those nodes first, then the replies read (redis-py's
        cluster pipeline costs as much as one command after another). A redirect (the slot
        map changed) falls back to that pipeline, which follows it."""
        def fetch(client: Any) -> list[Any]:
            groups: dict[str, tuple[Any, list[int]]] = {}
            for i, k in enumerate(keys):
                node = client.get_node_from_key(k)
                groups.setdefault(node.name, (node, []))[1].append(i)
            held: list[tuple[Any, Any, list[int]]] = []
            out: list[Any] = [None] * len(keys)
            try:
                for node, idx in groups.values():
                    pool = client.get_redis_connection(node).connection_pool
                    conn = pool.get_connection()
                    held.append((pool, conn, idx))
                    conn.send_packed_command(
                        conn.pack_commands([("HGETALL", keys[i]) for i in idx]),
                        check_health=False)
                for _, conn, idx in held:
                    for i in idx:
                        out[i] = conn.read_response()
            except (MovedError, AskError):
                for _, conn, _ in held:
                    conn.disconnect()  # replies may be left unread
                return pipelined(client)
            except BaseException:
                for _, conn, _ in held:
                    conn.disconnect()
                raise
            finally:
                for pool, conn, _ in held:
                    pool.release(conn)
            return out

        def pipelined(client: Any) -> list[Any]:
            client.nodes_manager.initialize()
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.hgetall(k)
            return list(pipe.execute())

        return [r if isinstance(r, dict) else dict(zip(r[0::2], r[1::2], strict=True))
                for r in self.run(fetch)]

    def _evalsha(self, client: Any, command: tuple[Any, ...]) -> Any:
        return client.evalsha(*command[1:])  # routed by the keys' slot

    def _load_script(self, client: Any, text: str) -> None:
        client.script_load(text)  # on every primary

    def _with_wait(self, client: Any, key: str, args: tuple[Any, ...]) -> tuple[Any, int]:
        for attempt in range(2):
            try:
                node = client.get_node_from_key(key)
                pipe = client.get_redis_connection(node).pipeline(transaction=False)
                pipe.execute_command(*args)
                pipe.execute_command(*self._wait_command())
                replies = pipe.execute(raise_on_error=False)
            except (RedisConnectionError, RedisTimeoutError, RedisClusterException):
                self.refresh_topology(client)  # a failover: find the new primary
                raise
            if not isinstance(replies[0], MovedError) or attempt:
                break
            self.refresh_topology(client)  # the command did not run: once more
        return self._waited(replies)

    @staticmethod
    def refresh_topology(client: Any) -> bool:
        """Ask the cluster for its slots again (after a failover); False when nothing
        answers (the next command fails, and refreshes, again)."""
        try:
            client.nodes_manager.initialize()
        except (RedisError, RedisClusterException, OSError):
            return False
        return True

    def health(self) -> dict[str, Any]:
        """The cluster's own view of its health.

        Every node the client knows is asked for ``CLUSTER INFO``; the cluster is ok when every
        node that answers says ``cluster_state:ok`` with all 16384 slots served, and every
        primary the client routes to answers. A primary that does not answer triggers one
        topology refresh first (after a failover the replica that took over is the primary).
        Details: ``cluster_state``, ``cluster_slots_ok`` (the least any node reports),
        ``nodes_answered`` and ``primaries_unreachable``.
        """
        client = self.run(lambda c: c)
        report = self._report(client)
        if report["primaries_unreachable"] and self.refresh_topology(client):
            report = self._report(client)  # (no refresh: report what was seen)
        if not report["nodes_answered"]:
            raise StoreUnavailableError(f"no node of the Redis Cluster at {self.url} answers")
        return report

    @staticmethod
    def _report(client: Any) -> dict[str, Any]:
        states: list[str] = []
        slots: list[int] = []
        unreachable = 0
        for node in client.get_nodes():
            try:
                info = client.get_redis_connection(node).execute_command("CLUSTER INFO")
            except (RedisError, RedisClusterException, OSError):
                unreachable += node.server_type == "primary"
                continue
            if isinstance(info, bytes | str):  # without redis-py's parser: "key:value" lines
                text = info.decode() if isinstance(info, bytes) else info
                info = dict(line.split(":", 1) for line in text.split() if ":" in line)
            states.append(str(info.get("cluster_state", "")))
            slots.append(int(info.get("cluster_slots_ok", 0)))
        state = "ok" if states and all(x == "ok" for x in states) else "fail"
        slots_ok = min(slots) if slots else 0
        return {
            "ok": state == "ok" and slots_ok == _ALL_SLOTS and not unreachable,
            "cluster_state": state,
            "cluster_slots_ok": slots_ok,
            "nodes_answered": len(states),
            "primaries_unreachable": unreachable,
        }
