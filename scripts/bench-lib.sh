# Shared by scripts/bench-limit.sh and scripts/bench-peer.sh (sourced).

# The median and the range ("LO-HI") of the numbers on stdin, space-separated.
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
spread() { tr ' ' '\n' | grep -v '^$' | sort -n | awk 'NR==1 {lo=$1} {hi=$1} END {print lo "-" hi}'; }

# wrk's request generator (see the file).
POST_LUA=$(dirname "${BASH_SOURCE[0]}")/bench-post.lua
