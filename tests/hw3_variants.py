"""Single-bug variants of the hw3 reference solution (data, no tests).

Each variant replaces one exact piece of text, occurring exactly once in
`reference/hw3/<file>`, by a buggy version. The result still imports. A correct
grader takes points from the units in `broken` and from no other unit; `why`
says what the grader must notice. No unit of recurrent.py calls another, so each
bug breaks exactly the unit it names.
"""

from variants import Variant, variant as _v

VARIANTS: list[Variant] = [
    _v(
        "embedding_repeats_overwrite",
        "recurrent.py",
        "self.dweight.index_add_(0, self.idx.reshape(-1), grad_out.reshape(-1, grad_out.shape[-1]))",
        "self.dweight[self.idx.reshape(-1)] = grad_out.reshape(-1, grad_out.shape[-1])",
        "recurrent.Embedding",
        "a word used twice keeps one of its gradients instead of their sum",
        loses={"recurrent.Embedding.backward"},
    ),
    _v(
        "embedding_padding_learns",
        "recurrent.py",
        "self.dweight[self.padding_idx] = 0.0  # padding is not a word: it never learns",
        "pass  # the padding row learns like any word",
        "recurrent.Embedding",
        "the padding row gets a gradient",
        loses={"recurrent.Embedding.backward"},
    ),
    _v(
        "rnncell_forgets_bias_hh",
        "recurrent.py",
        "torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh)",
        "torch.tanh(x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T)",
        "recurrent.RNNCell",
        "one of torch's two biases is left out",
        loses={"recurrent.RNNCell.forward"},
    ),
    _v(
        "grucell_gate_order",
        "recurrent.py",
        "        gi_r, gi_z, gi_n = gi.chunk(3, dim=1)\n        gh_r, gh_z, gh_n = gh.chunk(3, dim=1)\n        r = torch",
        "        gi_z, gi_r, gi_n = gi.chunk(3, dim=1)\n        gh_z, gh_r, gh_n = gh.chunk(3, dim=1)\n        r = torch",
        "recurrent.GRUCell",
        "the row blocks read as [z; r; n] instead of torch's [r; z; n]: weights do not copy to torch.nn.GRUCell",
        loses={"recurrent.GRUCell.forward", "recurrent.GRUCell.float32"},
    ),
    _v(
        "grucell_backward_reset_gate",
        "recurrent.py",
        "        dgh = torch.cat([dr_pre, dz_pre, dn_pre * r], dim=1)\n        self.dweight_ih, self.dweight_hh = dgi.T @ x",
        "        dgh = torch.cat([dr_pre, dz_pre, dn_pre], dim=1)\n        self.dweight_ih, self.dweight_hh = dgi.T @ x",
        "recurrent.GRUCell",
        "the reset gate is forgotten on the state's share of the candidate in backward",
        loses={"recurrent.GRUCell.backward", "recurrent.GRUCell.gradcheck"},
    ),
    _v(
        "lstmcell_forget_gate_bias",
        "recurrent.py",
        "i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)",
        "i, f, g, o = torch.sigmoid(i), torch.sigmoid(f + 1.0), torch.tanh(g), torch.sigmoid(o)",
        "recurrent.LSTMCell",
        "a forget-gate bias of 1 added on top of torch's (a common initialisation trick, not torch.nn.LSTMCell)",
        loses={"recurrent.LSTMCell.forward"},
    ),
    _v(
        "lstmcell_cell_gradient_skips_h",
        "recurrent.py",
        "dc_new = grad_c + grad_h * o * (1 - tanh_c**2)",
        "dc_new = grad_c",
        "recurrent.LSTMCell",
        "c' reaches the loss through h' too: that path is left out of backward",
        loses={"recurrent.LSTMCell.backward", "recurrent.LSTMCell.gradcheck"},
    ),
    _v(
        "gru_padded_steps_update_state",
        "recurrent.py",
        "h = torch.where(keep, h_new, h)  # past its length a sequence keeps its last state",
        "h = h_new",
        "recurrent.GRU",
        "padded steps go on updating the state, so h_n is not the state at each sequence's length",
        loses={"recurrent.GRU.forward", "recurrent.GRU.lengths"},
    ),
    _v(
        "gru_padded_outputs_kept",
        "recurrent.py",
        "outputs.append(torch.where(keep, h_new, torch.zeros_like(h_new)))",
        "outputs.append(h)",
        "recurrent.GRU",
        "out at padded positions repeats the last state instead of 0",
        loses={"recurrent.GRU.forward"},
    ),
    _v(
        "gru_backward_ignores_lengths",
        "recurrent.py",
        "grad_h_new = torch.where(keep, grad_out[:, t] + dh, torch.zeros_like(dh))",
        "grad_h_new = grad_out[:, t] + dh",
        "recurrent.GRU",
        "backward sends gradient through padded steps, so dx is not 0 there and the weights' gradients are off",
        loses={"recurrent.GRU.backward", "recurrent.GRU.lengths"},
    ),
]

# A bug only training shows: scored by the model-quality checks (make test-quality).
CLASSIFIER_VARIANTS: list[Variant] = [
    _v(
        "classifier_bag_of_words",
        "recurrent.py",
        "states, _ = self.gru(self.embed(tokens))",
        "states = self.embed(tokens).repeat(1, 1, 2)",
        "recurrent.train_text_classifier",
        "without the GRU the model sees a bag of words, which cannot tell which word a negation flips",
        loses={"recurrent.train_text_classifier.accuracy", "recurrent.train_text_classifier.accuracy_hidden"},
    ),
]
