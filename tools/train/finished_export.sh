# Sourced by the install scripts (install_model.sh, install_sample_decoder.sh):
#
#     finished_export "$@" FILE "what wrote it"
#
# checks that the script got OUT and WORK (else usage, exit 64), that OUT holds FILE (else
# it is not that tool's export) and that WORK/train.log says "# done" (a run stopped at
# --max-minutes exports a snapshot too); exits 1 with the reason otherwise. Sets out and work.
finished_export() {
    if [ $# -ne 4 ]; then
        echo "usage: $0 OUT WORK" >&2
        exit 64
    fi
    out=$1 work=$2
    if ! [ -f "$out/$3" ]; then
        echo "$out: no $3 (not a $4 export)" >&2
        exit 1
    fi
    if ! grep -q '^# done' "$work/train.log" 2>/dev/null; then
        echo "$work/train.log says the run has not finished: $out is a snapshot" >&2
        exit 1
    fi
}
