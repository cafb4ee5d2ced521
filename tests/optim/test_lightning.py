"""HAM in a Lightning module: configure_optimizers returns HAM(...) with a scheduler (README example)."""
import pytest
import torch

L = pytest.importorskip("lightning")


class Classifier(L.LightningModule):
    """The README's example: any LightningModule, HAM around its optimizer, a per-epoch schedule."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        from pyg_ham.optim import HAM, ham_param_groups

        optimizer = HAM(torch.optim.AdamW(ham_param_groups(self, weight_decay=0.01), lr=0.02), alpha=200.0)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.8)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def test_lightning_trainer_trains_with_ham_and_a_scheduler():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(128, 8, generator=gen)
    y = (x[:, 0] > 0).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    torch.manual_seed(0)
    model = Classifier()
    start = model.net[0].weight.detach().clone()
    steps = []

    from pyg_ham.optim import HAM

    real = HAM.step

    def counting(self, closure=None):
        steps.append(self)
        return real(self, closure)

    HAM.step = counting
    try:
        trainer = L.Trainer(max_epochs=5, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(model, loader)
    finally:
        HAM.step = real
    assert len(steps) == 5 * 4  # HAM.step ran every batch (Lightning's closure inside it)
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, HAM)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.02 * 0.8 ** 5)  # the scheduler stepped
    with torch.no_grad():
        accuracy = (model.net(x).argmax(1) == y).float().mean()
    assert accuracy > 0.9
    assert not torch.allclose(model.net[0].weight, start)
