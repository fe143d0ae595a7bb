import Foundation
import TesseraEngine

/// A layer or model: named parameters, buffers and sub-modules with PyTorch's dotted keys, train/eval mode.
open class Module {
    /// Whether the module is in training mode (batch statistics, dropout on).
    public private(set) var isTraining = true
    private var parameterSlots: [(name: String, tensor: Tensor)] = []
    private var bufferSlots: [(name: String, tensor: Tensor)] = []
    private var childSlots: [(name: String, module: Module)] = []
    /// Called with (module, input, output) after every forward pass, in order; a hook that returns a tensor
    /// replaces the output for the hooks after it and for the caller (PyTorch's `register_forward_hook`, whose
    /// hook may return a modified output): how Ablation-CAM zeroes a channel at a layer.
    public var forwardHooks: [(Module, Tensor, Tensor) -> Tensor?] = []

    public init() {}

    /// Registers a trainable tensor under `name` (marks it as requiring grad).
    @discardableResult
    public func registerParameter(_ name: String, _ tensor: Tensor) -> Tensor {
        precondition(!name.contains("."), "parameter names may not contain '.'")
        tensor.requiresGrad = true
        parameterSlots.append((name, tensor))
        return tensor
    }

    /// Registers a non-trainable state tensor (running statistics) under `name`.
    @discardableResult
    public func registerBuffer(_ name: String, _ tensor: Tensor) -> Tensor {
        bufferSlots.append((name, tensor))
        return tensor
    }

    /// Registers a sub-module under `name` (its keys become `name.…`).
    @discardableResult
    public func registerModule<M: Module>(_ name: String, _ module: M) -> M {
        childSlots.append((name, module))
        return module
    }

    /// Direct sub-modules in registration order.
    public var children: [(name: String, module: Module)] { childSlots }

    /// This module and every descendant with dotted paths ("" for self).
    public func namedModules(prefix: String = "") -> [(name: String, module: Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (n, m) in childSlots { out += m.namedModules(prefix: prefix.isEmpty ? n : "\(prefix).\(n)") }
        return out
    }

    /// The descendant at a dotted path (`layer4`, `decoder.3`), if any.
    public func module(at path: String) -> Module? {
        if path.isEmpty { return self }
        return namedModules().first { $0.name == path }?.module
    }

    /// Every parameter with its dotted key.
    public func namedParameters() -> [(name: String, tensor: Tensor)] {
        namedModules().flatMap { prefix, m in
            m.parameterSlots.map { (prefix.isEmpty ? $0.name : "\(prefix).\($0.name)", $0.tensor) }
        }
    }

    /// Every buffer with its dotted key.
    public func namedBuffers() -> [(name: String, tensor: Tensor)] {
        namedModules().flatMap { prefix, m in
            m.bufferSlots.map { (prefix.isEmpty ? $0.name : "\(prefix).\($0.name)", $0.tensor) }
        }
    }

    /// All trainable tensors.
    public var parameters: [Tensor] { namedParameters().map(\.tensor) }

    /// Parameters and buffers by dotted key, as torch's state_dict.
    public func stateDict() -> [(name: String, tensor: Tensor)] { namedParameters() + namedBuffers() }

    /// Switches this module and its descendants to training (true) or evaluation mode.
    public func train(_ on: Bool = true) {
        for (_, m) in namedModules() { m.isTraining = on }
    }

    /// Evaluation mode: running statistics, no dropout.
    public func eval() { train(false) }

    /// The computation; subclasses that take one tensor override it.
    open func forward(_ x: Tensor) -> Tensor {
        preconditionFailure("\(type(of: self)) does not take a single tensor input")
    }

    /// Runs `forward` and the forward hooks.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        runForwardHooks(input: x, output: forward(x))
    }

    /// Calls the forward hooks and returns the output they leave; modules with multi-input forwards call it
    /// themselves.
    public func runForwardHooks(input: Tensor, output: Tensor) -> Tensor {
        var y = output
        for hook in forwardHooks { y = hook(self, input, y) ?? y }
        return y
    }

    /// Copies values from `state` into this module's tensors by key, and reports the keys that do not fit: missing
    /// from `state`, in `state` but not in the module, and of another shape. Strict (the default), any of them
    /// (but a missing `num_batches_tracked`, as torch's BatchNorm allows) throws the report before a tensor is
    /// changed; otherwise the fitting keys are copied and the report returned.
    @discardableResult
    public func load(_ state: [String: Tensor], strict: Bool = true) throws -> LoadReport {
        let own = stateDict()
        var report = LoadReport()
        var fitting: [(Tensor, Tensor)] = []
        for (name, t) in own {
            guard let v = state[name] else {
                report.missing.append(name)
                continue
            }
            guard v.count == t.count, v.shape == t.shape || v.count == 1 && t.count == 1 else {
                report.misshaped.append(LoadReport.Misshaped(name: name, file: v.shape, model: t.shape))
                continue
            }
            fitting.append((t, v))
        }
        let ownNames = Set(own.map(\.name))
        report.unexpected = state.keys.filter { !ownNames.contains($0) }.sorted()
        if strict && !report.ignoringCounters(missingOnly: true).isClean { throw ModuleLoadError(report: report) }
        for (t, v) in fitting { t.assign(v.shape == t.shape ? v : v.reshaped(t.shape)) }
        return report
    }
}

/// How a state dict fits a module (`Module.load`): keys missing from it, unexpected in it, and of another shape.
public struct LoadReport: Equatable, Sendable, CustomStringConvertible {
    public struct Misshaped: Equatable, Sendable {
        public let name: String
        public let file: [Int], model: [Int]
        public init(name: String, file: [Int], model: [Int]) {
            self.name = name
            self.file = file
            self.model = model
        }
    }
    public var missing: [String] = []
    public var unexpected: [String] = []
    public var misshaped: [Misshaped] = []

    public init() {}

    public var isClean: Bool { missing.isEmpty && unexpected.isEmpty && misshaped.isEmpty }

    /// The report without PyTorch's batch-norm counters (`num_batches_tracked`), which carry no weights: missing
    /// ones only, or (for an import) unexpected ones too.
    public func ignoringCounters(missingOnly: Bool = false) -> LoadReport {
        var r = self
        let counter = { (name: String) in name.hasSuffix("num_batches_tracked") }
        r.missing.removeAll(where: counter)
        if !missingOnly { r.unexpected.removeAll(where: counter) }
        return r
    }

    /// `N missing: a, b, ...; N unexpected: ...; N mis-shaped: x (file [..], model [..])`, at most 20 names a list.
    public var description: String {
        var parts: [String] = []
        func list(_ what: String, _ names: [String]) {
            guard !names.isEmpty else { return }
            let shown = names.prefix(20).joined(separator: ", ")
            parts.append("\(names.count) \(what): \(shown)" + (names.count > 20 ? ", ..." : ""))
        }
        list("missing", missing)
        list("unexpected", unexpected)
        list("mis-shaped", misshaped.map { "\($0.name) (file \($0.file), model \($0.model))" })
        return parts.joined(separator: "; ")
    }
}

/// A checkpoint does not fit a module.
public struct ModuleLoadError: Error, CustomStringConvertible {
    public let report: LoadReport
    public init(report: LoadReport) { self.report = report }
    public var description: String { "the weights do not fit the model: \(report)" }
}
