

# ---- the processes (the same for every exported train.py) -----------------


def start_processes():
    """This process's place under torchrun (world size 1 and rank 0 under
    plain `python train.py`) and its device: a GPU per process with CUDA,
    else the CPU. Several processes talk over NCCL on GPUs, gloo on CPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, rank, device
