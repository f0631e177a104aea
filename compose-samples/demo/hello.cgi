#!/bin/sh
# web's page: which task answered, and what the api service (reached by name) said.
api=$(nslookup api 2>/dev/null | awk '/^Address/ { a = $NF } END { print a }')
reply=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "$api" 80 | tail -n 1)
printf 'Content-Type: text/plain\r\n\r\n'
printf 'web %s -> api (%s): %s\n' "$(hostname)" "$api" "$reply"
