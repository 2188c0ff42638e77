# shellcheck shell=bash
# Reading a bench/run.sh result directory: medians over rounds from raw.csv and
# perftest.csv. The caller sets $raw and $perf.

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Column COLUMN of the rows of one cell and round; SENDER: 0 receivers, 1 senders,
# 2 churners, "" senders and receivers.
column_of() {
    local system=$1 nodes=$2 workload=$3 size=$4 round=$5 sender=$6 column=$7
    awk -F, -v s="$system" -v n="$nodes" -v w="$workload" -v b="$size" -v r="$round" -v snd="$sender" -v c="$column" \
        'NR > 1 && $1 == s && $2 == n && $3 == w && $4 == b && $5 == r && (snd == "" ? $6 != 2 : $6 == snd) && $c != "" { print $c }' "$raw"
}

# Median over rounds of the per-round median over the chosen processes (or their sum).
figure() {
    local system=$1 nodes=$2 workload=$3 size=$4 sender=$5 column=$6 how=${7:-median} round
    for round in $(awk -F, 'NR > 1 { print $5 }' "$raw" | sort -un); do
        if [ "$how" = sum ]; then
            column_of "$system" "$nodes" "$workload" "$size" "$round" "$sender" "$column" | awk '{ t += $1 } END { if (NR) print t }'
        else
            column_of "$system" "$nodes" "$workload" "$size" "$round" "$sender" "$column" | median
        fi
    done | { grep -v '^$' || true; } | median
}

# A receiver's figure: of the receivers, or on one node of the only process there.
receiver_figure() {
    local system=$1 nodes=$2 workload=$3 size=$4 column=$5
    if [ "$nodes" -gt 1 ]; then
        figure "$system" "$nodes" "$workload" "$size" 0 "$column"
    else
        figure "$system" "$nodes" "$workload" "$size" "" "$column"
    fi
}

perftest_figure() {  # tool size -> median over rounds
    [ -f "$perf" ] || return 0
    awk -F, -v t="$1" -v b="$2" 'NR > 1 && $1 == t && $2 == b && $4 != "" { print $4 }' "$perf" | median
}

cells() {  # workload -> "nodes size" pairs present, sorted
    awk -F, -v w="$1" 'NR > 1 && $3 == w { print $2, $4 }' "$raw" | sort -u -k1,1n -k2,2n
}
