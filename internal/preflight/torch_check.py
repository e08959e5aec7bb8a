# The preflight's torch check, run with the image's python3. It prints one line,
# "TRAINENV-PREFLIGHT " and a JSON object, which package preflight judges; every
# exception is caught and reported, so only a crash of python itself prints nothing.
import json
import sys
import warnings


def check():
    try:
        import torch
    except ModuleNotFoundError as e:
        if e.name == "torch":
            return {"installed": False}
        return {"installed": True, "importError": "%s: %s" % (type(e).__name__, e)}
    except BaseException as e:  # a broken install: missing CUDA libraries, ABI mismatch
        return {"installed": True, "importError": "%s: %s" % (type(e).__name__, e)}
    out = {"installed": True, "version": str(torch.__version__), "cuda": torch.version.cuda}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out["available"] = bool(torch.cuda.is_available())
            if out["available"]:
                n = torch.cuda.device_count()
                out["devices"] = n
                out["capabilities"] = ["%d.%d" % tuple(torch.cuda.get_device_capability(i)) for i in range(n)]
                out["archList"] = list(torch.cuda.get_arch_list())
        except BaseException as e:
            out["available"] = False
            out["error"] = "%s: %s" % (type(e).__name__, e)
    # torch says why CUDA is unavailable in a warning ("The NVIDIA driver on your system
    # is too old ..."): pass it on.
    out["warnings"] = [str(w.message) for w in caught][:3]
    return out


sys.stdout.write("TRAINENV-PREFLIGHT " + json.dumps(check()) + "\n")
