
use builtin;
use str;

set edit:completion:arg-completer[smq] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'smq'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'smq'= {
            cand --help 'Print help (-h is --host, as in mosquitto)'
            cand --version 'Print the version'
            cand pub 'Publish messages, as mosquitto_pub'
            cand generate 'Write shell completions and man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'smq;pub'= {
            cand -t 'Topic to publish to (no wildcards); may come from -L instead'
            cand --topic 'Topic to publish to (no wildcards); may come from -L instead'
            cand -m 'Send this argument as the payload'
            cand --message 'Send this argument as the payload'
            cand -f 'Send the whole file as one payload (binary-safe)'
            cand --file 'Send the whole file as one payload (binary-safe)'
            cand -q 'Quality of service for every message'
            cand --qos 'Quality of service for every message'
            cand --repeat 'Publish the -m/-f/-s payload N times'
            cand --repeat-delay 'Seconds (fractions allowed) to wait after each message is delivered before the next'
            cand --line-topic-sep 'With -l: each line is TOPIC<SEP>PAYLOAD (SEP may be an escape such as ''\t'')'
            cand --rate 'Publish at most N messages per second'
            cand -h 'Broker host'
            cand --host 'Broker host'
            cand -p 'Broker port [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]'
            cand --port 'Broker port [default: 1883; 8883 with TLS; 80 for ws, 443 for wss]'
            cand -L 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic'
            cand --url 'mqtt|mqtts|ws|wss://[user[:pass]@]host[:port]/topic'
            cand --ws-path 'WebSocket path'
            cand --ws-header 'Extra WebSocket handshake header ''Name: value'' (repeatable)'
            cand --unix 'Connect through a Unix domain socket instead of TCP'
            cand -A 'Bind the outgoing socket to this local address'
            cand -V 'MQTT protocol version [default: mqttv311, or mqttv5 with -D or -x]'
            cand --protocol-version 'MQTT protocol version [default: mqttv311, or mqttv5 with -D or -x]'
            cand -i 'Client id [default: empty, the broker assigns one]'
            cand --id 'Client id [default: empty, the broker assigns one]'
            cand -I 'Client id prefix; the process id is appended'
            cand --id-prefix 'Client id prefix; the process id is appended'
            cand -k 'Keep-alive seconds; 0 turns keep-alive off'
            cand --keepalive 'Keep-alive seconds; 0 turns keep-alive off'
            cand -x 'MQTT 5 session expiry seconds; -1 or ∞ never expires'
            cand --session-expiry 'MQTT 5 session expiry seconds; -1 or ∞ never expires'
            cand -u 'Username'
            cand --username 'Username'
            cand -P 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt)'
            cand --pw 'Password (visible in ps: prefer SMQ_PASSWORD, --pw-file or --pw-prompt)'
            cand --pw-file 'Read the password from the first line of FILE'
            cand -M 'Maximum QoS 1/2 messages in flight'
            cand --max-inflight 'Maximum QoS 1/2 messages in flight'
            cand --will-topic 'Topic of the Will (no wildcards)'
            cand --will-payload 'Will payload'
            cand --will-qos 'Will QoS'
            cand -D 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)'
            cand --property 'MQTT 5 property: COMMAND NAME VALUE, or COMMAND user-property KEY VALUE (forces v5)'
            cand --cafile 'Trusted CA certificates (PEM); turns TLS on'
            cand --capath 'Directory of trusted CA certificates (PEM); turns TLS on'
            cand --cert 'Client certificate (PEM)'
            cand --key 'Client private key (PEM)'
            cand --tls-version 'Lowest TLS version: tlsv1.2 or tlsv1.3'
            cand --tls-alpn 'ALPN protocol to offer (repeatable)'
            cand --servername 'Name to send as SNI and to verify the certificate against [default: the host]'
            cand --ciphers 'Cipher suites, by IANA name, separated by '':'''
            cand --keyform 'Not supported by smq (OpenSSL only)'
            cand --tls-engine 'Not supported by smq (OpenSSL only)'
            cand --tls-engine-kpass-sha1 'Not supported by smq (OpenSSL only)'
            cand --psk 'Not supported by smq (TLS-PSK is not in rustls)'
            cand --psk-identity 'Not supported by smq (TLS-PSK is not in rustls)'
            cand -s 'Send all of stdin as one payload'
            cand --stdin-file 'Send all of stdin as one payload'
            cand -l 'Send each line of stdin as its own message, as lines arrive'
            cand --stdin-line 'Send each line of stdin as its own message, as lines arrive'
            cand -n 'Send a zero-length payload (with -r: clear the retained message)'
            cand --null-message 'Send a zero-length payload (with -r: clear the retained message)'
            cand -r 'Set the retain flag'
            cand --retain 'Set the retain flag'
            cand --send-empty 'With -l: send empty lines as zero-length messages instead of skipping them'
            cand --ws 'Connect over WebSocket'
            cand -c 'Keep the session when disconnected (needs -i)'
            cand --disable-clean-session 'Keep the session when disconnected (needs -i)'
            cand --pw-prompt 'Ask for the password on the terminal'
            cand --will-retain 'Retain the Will'
            cand --nodelay 'Set TCP_NODELAY'
            cand -d 'Trace every packet on stderr'
            cand --debug 'Trace every packet on stderr'
            cand --quiet 'Print no error messages'
            cand --tls-use-os-certs 'Trust the operating system''s CA store; turns TLS on'
            cand --insecure 'DANGEROUS: accept any server certificate, so anyone on the path can read and change the traffic'
            cand --no-tls 'Turn TLS off, even with -p 8883 or a CA option'
            cand --help 'Print help (-h is --host, as in mosquitto)'
        }
        &'smq;generate'= {
            cand --out-dir 'Directory to write completions/ and man/ into'
            cand --help 'Print help (-h is --host, as in mosquitto)'
        }
        &'smq;help'= {
            cand pub 'Publish messages, as mosquitto_pub'
            cand generate 'Write shell completions and man pages'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'smq;help;pub'= {
        }
        &'smq;help;generate'= {
        }
        &'smq;help;help'= {
        }
    ]
    $completions[$command]
}
