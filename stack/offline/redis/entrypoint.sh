#!/bin/sh
# As the official image does: a first argument starting with '-' is redis-server's, and
# protected mode is off (Debian's default refuses every client off loopback when Redis has
# no password; the stack's replicas reach it over the overlay network).
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then shift; set -- redis-server "$@" --protected-mode no; fi
exec "$@"
