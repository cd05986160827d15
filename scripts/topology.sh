# The stack's topology, sourced by scripts/lib.sh (after its Kafka and Connect settings, before
# the programs' settings that name the brokers). Sourced, never run; it defines and exports only.
#   TOPOLOGY=single   one Kafka node, one Connect worker, one instance of each program (the default)
#   TOPOLOGY=cluster  three KRaft nodes, two Connect workers in one group, two instances of every
#                     saga service behind the reverse proxy on the usual ports (scripts/cluster.env,
#                     rendered from stack/cluster.go; docs/architecture.md, "The cluster topology")
# Unset, TOPOLOGY is what this stack was made as (.stack/topology, written by the supervisor when it
# formats the cluster's storage), so make down, make status and make chaos follow make up.
if [ -z "${TOPOLOGY:-}" ]; then
  TOPOLOGY=single
  [ ! -r "$STACK/topology" ] || read -r TOPOLOGY <"$STACK/topology"
fi
case $TOPOLOGY in
  single) ;;
  cluster)
    . "$ROOT/scripts/cluster.env"
    # Every node's broker port and controller port, and every worker's REST port, moved by OFFSET:
    # the supervisor reads these (KAFKA_NODES: name:id:port:controller-port, CONNECT_WORKERS:
    # name:port); the clients' bootstrap lists every broker.
    KAFKA_NODES= CONNECT_WORKERS= KAFKA_BOOTSTRAP=
    for n in $CLUSTER_KAFKA_NODES; do
      IFS=: read -r _name _id _port _cport <<<"$n"
      KAFKA_NODES+="${KAFKA_NODES:+ }$_name:$_id:$((_port + OFFSET)):$((_cport + OFFSET))"
      KAFKA_BOOTSTRAP+="${KAFKA_BOOTSTRAP:+,}$KAFKA_HOST:$((_port + OFFSET))"
    done
    for w in $CLUSTER_CONNECT_WORKERS; do
      IFS=: read -r _name _port <<<"$w"
      CONNECT_WORKERS+="${CONNECT_WORKERS:+ }$_name:$((_port + OFFSET))"
    done
    unset _name _id _port _cport n w
    # Three brokers and two workers on a 2-core box beside other work: smaller heaps than the
    # single node's (each broker holds 1/3 of the leaders; measured RSS in docs/architecture.md).
    KAFKA_HEAP=${CLUSTER_KAFKA_HEAP:--Xms128m -Xmx384m}
    CONNECT_HEAP=${CLUSTER_CONNECT_HEAP:--Xms128m -Xmx512m}
    export KAFKA_NODES CONNECT_WORKERS CLUSTER_REPLICATION_FACTOR CLUSTER_MIN_INSYNC_REPLICAS
    ;;
  *) printf '\033[31merror:\033[0m TOPOLOGY=%s: single or cluster\n' "$TOPOLOGY" >&2; exit 1 ;;
esac
export TOPOLOGY
