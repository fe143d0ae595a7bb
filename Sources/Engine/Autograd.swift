import Foundation

/// One recorded operation: its inputs and the rule mapping the output's gradient to theirs.
final class GradNode {
    let inputs: [Tensor]
    let backward: (Tensor) -> [Tensor?]
    init(inputs: [Tensor], backward: @escaping (Tensor) -> [Tensor?]) {
        self.inputs = inputs
        self.backward = backward
    }
}

/// Whether operations record history (thread-local, on by default).
public enum GradMode {
    private static let off = ThreadFlag()

    /// True unless inside `withNoGrad`.
    public static var isEnabled: Bool {
        get { !off.isSet }
        set { off.set(!newValue) }
    }
}

/// Runs `body` recording nothing, so activations are freed as soon as they are no longer used.
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    let previous = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = previous }
    return try body()
}

extension Tensor {
    /// Attaches `backward` to `out` when grad mode is on and any input requires grad.
    @discardableResult
    static func record(_ out: Tensor, _ inputs: [Tensor], _ backward: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard GradMode.isEnabled, inputs.contains(where: { $0.requiresGrad }) else { return out }
        out.requiresGrad = true
        out.gradNode = GradNode(inputs: inputs, backward: backward)
        return out
    }

    /// Keeps this (non-leaf) tensor's gradient in `grad` after `backward()`, as torch's `retain_grad`.
    public func retainGrad() {
        retainsGrad = true
    }

    /// Whether this tensor was produced by a recorded operation.
    public var hasHistory: Bool { gradNode != nil }

    /// Back-propagates from this tensor (a scalar unless `gradient` is given) into every leaf that requires grad.
    /// `onLeafGradient` sees each leaf as soon as its gradient is complete (every use of it processed), so
    /// data-parallel training can send gradients while the rest of the backward pass runs.
    public func backward(
        _ gradient: Tensor? = nil, retainGraph: Bool = false, onLeafGradient: ((Tensor) -> Void)? = nil
    ) {
        precondition(requiresGrad, "backward() on a tensor that does not require grad")
        let seed: Tensor
        if let gradient {
            precondition(gradient.shape == shape, "gradient shape \(gradient.shape) != \(shape)")
            seed = gradient
        } else {
            precondition(count == 1, "backward() without a gradient needs a scalar, got \(shape)")
            seed = Tensor.full(shape, 1)
        }
        withNoGrad {
            let order = topologicalOrder()
            var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(self): seed]
            for t in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(t)) else { continue }
                if t.gradNode == nil || t.retainsGrad {
                    if t.requiresGrad { t.grad = t.grad.map { $0 + g } ?? g.contiguous().copyIfShared(of: seed) }
                    if t.gradNode == nil, t.requiresGrad { onLeafGradient?(t) }
                }
                guard let node = t.gradNode else { continue }
                let inputGrads = node.backward(g)
                precondition(inputGrads.count == node.inputs.count, "derivative rule returned wrong arity")
                for (input, ig) in zip(node.inputs, inputGrads) {
                    guard let ig, input.requiresGrad else { continue }
                    precondition(
                        ig.shape == input.shape,
                        "gradient shape \(ig.shape) does not match input \(input.shape)")
                    let key = ObjectIdentifier(input)
                    grads[key] = grads[key].map { $0 + ig } ?? ig
                }
                if !retainGraph { t.gradNode = nil }
            }
        }
    }

    private func copyIfShared(of seed: Tensor) -> Tensor {
        storage === seed.storage ? copy() : self
    }

    /// Tensors reachable from self through recorded nodes, inputs before outputs.
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if !visited.insert(ObjectIdentifier(t)).inserted { continue }
            stack.append((t, true))
            for input in t.gradNode?.inputs ?? [] where input.requiresGrad && !visited.contains(ObjectIdentifier(input))
            {
                stack.append((input, false))
            }
        }
        return order
    }
}
