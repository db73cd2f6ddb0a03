

# ---- the training loop (the same for every exported model) ----------------


class Recorder(torch.nn.Module):
    """Calls the model and keeps its last output, for the metrics."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.output = None

    def forward(self, *inputs):
        self.output = self.model(*inputs)
        return self.output


def to_labels(y, device):
    y = torch.as_tensor(y, device=device)
    return y.long() if CLASS_LABELS else y.float()


def evaluate(model, data, device):
    """Loss and metrics over `data` in batches of BATCH_SIZE, as nnc reports them."""
    x, y = data
    recorder = Recorder(model)
    total, outputs = 0.0, []
    with torch.no_grad():
        for start in range(0, len(x), BATCH_SIZE):
            xb = torch.as_tensor(x[start : start + BATCH_SIZE], device=device)
            yb = to_labels(y[start : start + BATCH_SIZE], device)
            total += float(loss_fn(recorder, xb, yb)) * len(xb)
            outputs.append(recorder.output.cpu().numpy())
    out = np.concatenate(outputs)
    scores = {"loss": total / len(x)}
    if CLASS_LABELS:
        scores["accuracy"] = nnc_data.metric("accuracy", out, y)
    for m in METRICS:
        if m == "perplexity":
            scores[m] = math.exp(min(scores["loss"], 700.0))
        elif m != "accuracy":
            scores[m] = nnc_data.metric(m, out, y)
    return scores


def line(scores, prefix=""):
    return "  ".join(f"{prefix}{k} {v:.4f}" for k, v in scores.items())


def save(model, path):
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if STATS is not None:
        tensors["data/mean"] = torch.from_numpy(STATS[0])
        tensors["data/std"] = torch.from_numpy(STATS[1])
    tmp = path + ".tmp"
    save_file(tensors, tmp, metadata={"format": "pt", "nnc_model": MODEL})
    os.replace(tmp, path)


class Patience:
    """nnc's early_stop: stop when `monitor` has not improved for `patience`
    epochs, keeping the best epoch's weights."""

    def __init__(self, monitor, patience):
        self.monitor, self.patience = monitor, patience
        self.best, self.best_epoch, self.best_state, self.waited = None, 0, None, 0

    def update(self, epoch, scores, model):
        value = scores.get(self.monitor)
        if value is None:
            return False
        lower_is_better = "loss" in self.monitor or self.monitor.endswith(("mse", "mae"))
        better = self.best is None or (value < self.best if lower_is_better else value > self.best)
        if better:
            self.best, self.best_epoch, self.waited = value, epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.waited += 1
        return self.waited >= self.patience


def main():
    global STATS
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("NNC_DATA"), help="where datasets are also looked up (NNC_DATA)")
    parser.add_argument("--weights", default=os.path.join(here, "weights.safetensors"), help="initial weights")
    parser.add_argument("--out", default=os.path.join(here, "trained.safetensors"), help="where the trained weights go")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs (default: the .nn file's)")
    parser.add_argument("--limit", type=int, default=None, help="train on at most this many samples (a quick run)")
    args = parser.parse_args()

    world, rank, device = start_processes()
    torch.manual_seed(SEED)

    (x, y), validation, test, STATS = load_data(args.data_dir)
    if args.limit is not None:
        x, y = x[: args.limit], y[: args.limit]
    model = MODEL_CLASS()
    state = load_file(args.weights)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("data/")})
    model.to(device)
    ops.use_device(device)
    # DistributedDataParallel averages the gradients of all processes, so
    # each global batch of BATCH_SIZE rows (the nnc batch) is split between
    # them and one step still sees the whole batch.
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    recorder = Recorder(net)
    optimizer = make_optimizer(model.parameters())

    n = len(x)
    steps_per_epoch = -(-n // BATCH_SIZE)
    step = 0
    patience = Patience(**EARLY_STOP) if EARLY_STOP else None
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        order = nnc_data.shuffle_indices(n, SEED, epoch)
        total, count, outputs, targets = 0.0, 0, [], []
        net.train()
        for start in range(0, n, BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            mine = batch[rank::world]
            lr = nnc_data.lr_at(SCHEDULE, LR, WARMUP, step, steps_per_epoch, args.epochs)
            for group in optimizer.param_groups:
                group["lr"] = lr
            xb = torch.as_tensor(x[mine], device=device)
            yb = to_labels(y[mine], device)
            loss = loss_fn(recorder, xb, yb)
            if not torch.isfinite(loss):
                raise SystemExit(f"the loss became {loss.item()} at epoch {epoch}, step {step + 1}")
            optimizer.zero_grad()
            loss.backward()
            if CLIP_NORM is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP_NORM)
            optimizer.step()
            step += 1
            total += loss.item() * len(mine)
            count += len(mine)
            outputs.append(recorder.output.detach().cpu().numpy())
            targets.append(y[mine])
        train_scores = {"loss": total / count}
        out, tgt = np.concatenate(outputs), np.concatenate(targets)
        if CLASS_LABELS:
            train_scores["accuracy"] = nnc_data.metric("accuracy", out, tgt)
        for m in METRICS:
            if m == "perplexity":
                train_scores[m] = math.exp(min(train_scores["loss"], 700.0))
            elif m != "accuracy":
                train_scores[m] = nnc_data.metric(m, out, tgt)
        net.eval()
        val_scores = evaluate(model, validation, device) if validation is not None else {}
        if rank == 0:
            print(
                f"epoch {epoch}/{args.epochs}  {line(train_scores)}  {line(val_scores, 'val_')}  lr {lr:.6f}  {time.time() - t0:.1f}s",
                flush=True,
            )
            save(model, args.out)
        if patience is not None:
            scores = dict(train_scores, **{f"val_{k}": v for k, v in val_scores.items()})
            if patience.update(epoch, scores, model):
                model.load_state_dict(patience.best_state)
                if rank == 0:
                    print(f"{patience.monitor} did not improve for {patience.patience} epochs; kept the weights of epoch {patience.best_epoch}")
                    save(model, args.out)
                break
    if rank == 0:
        if test is not None:
            print(f"test: {line(evaluate(model, test, device))}")
        print(f"wrote {args.out}")
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
