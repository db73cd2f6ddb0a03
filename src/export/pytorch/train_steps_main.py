# ---- the training loop of a block of steps (the same for every export) ----


def save(model, path):
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata={"format": "pt", "nnc_model": MODEL})
    os.replace(tmp, path)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("NNC_DATA"), help="where datasets are also looked up (NNC_DATA)")
    parser.add_argument("--weights", default=os.path.join(here, "weights.safetensors"), help="initial weights")
    parser.add_argument("--out", default=os.path.join(here, "trained.safetensors"), help="where the trained weights go")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs (default: the .nn file's)")
    parser.add_argument("--limit", type=int, default=None, help="train on at most this many samples (a quick run)")
    args = parser.parse_args()

    # Under torchrun each process takes its share of every global batch and
    # the gradients are averaged across processes before each step, as
    # DistributedDataParallel does for one model (a step's loss reads several
    # models, so the averaging is written out here).
    world, rank, device = start_processes()
    torch.manual_seed(SEED + rank)

    (x, y), _, _, _ = load_data(args.data_dir)
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    model = MODEL_CLASS()
    state = load_file(args.weights)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("data/")})
    model.to(device)
    ops.use_device(device)
    # One optimizer per step, over the parameters of the model it trains.
    optimizers = [make_opt(getattr(model, trains).parameters()) for _, _, trains, make_opt, _, _ in STEPS]
    trained = [list(getattr(model, trains).parameters()) for _, _, trains, _, _, _ in STEPS]

    n = len(x)
    steps_per_epoch = -(-n // BATCH_SIZE)
    batch_no = 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = nnc_data.shuffle_indices(n, SEED, epoch)
        totals = [[0.0, 0] for _ in STEPS]
        model.train()
        for start in range(0, n, BATCH_SIZE):
            mine = order[start : start + BATCH_SIZE][rank::world]
            xb = torch.as_tensor(x[mine], device=device)
            yb = torch.as_tensor(y[mine], device=device)
            batch_no += 1
            for k, (name, loss_fn, _, _, base_lr, every) in enumerate(STEPS):
                if batch_no % every != 0:
                    continue
                lr = nnc_data.lr_at(SCHEDULE, base_lr, WARMUP, batch_no - 1, steps_per_epoch, args.epochs)
                for group in optimizers[k].param_groups:
                    group["lr"] = lr
                loss = loss_fn(model, xb, yb)
                if not torch.isfinite(loss):
                    raise SystemExit(f"the loss of step `{name}` became {loss.item()} at epoch {epoch}, batch {batch_no}")
                # Other models' gradients from this loss are cleared by
                # their own step before it differentiates.
                optimizers[k].zero_grad()
                loss.backward()
                if world > 1:
                    for p in trained[k]:
                        if p.grad is not None:
                            dist.all_reduce(p.grad)
                            p.grad /= world
                optimizers[k].step()
                totals[k][0] += loss.item()
                totals[k][1] += 1
        losses = "  ".join(f"{name}_loss {t / max(c, 1):.4f}" for (name, *_), (t, c) in zip(STEPS, totals))
        if rank == 0:
            print(f"epoch {epoch}/{args.epochs}  {losses}  {time.time() - t0:.1f}s", flush=True)
            save(model, args.out)
    if rank == 0:
        print(f"wrote {args.out}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
