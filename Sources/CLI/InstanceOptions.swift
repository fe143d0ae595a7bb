import ArgumentParser
import TesseraInference
import TesseraObjects
import TesseraSettings

extension InstanceMethod: ExpressibleByArgument {}
extension SeedSource: ExpressibleByArgument {}
extension Connectivity: ExpressibleByArgument {}
extension TruthKind: ExpressibleByArgument {}

/// `--instances` and its rules, shared by `segment` and `eval`; declared in `ObjectOptions.options`.
struct InstanceOptions: ParsableArguments {
    static var table: OptionTable<ObjectOptions> { OptionTable(stage: "objects", ObjectOptions.options) }

    @Option(help: table.argumentHelp("instances")) var instances: InstanceMethod?
    @Option(help: table.argumentHelp("connectivity")) var connectivity = InstanceSettings().connectivity
    @Option(help: table.argumentHelp("seeds")) var seeds = InstanceSettings().seeds
    @Option(help: table.argumentHelp("seed_depth")) var seedDepth: Double?
    @Option(help: table.argumentHelp("min_size")) var minSize = InstanceSettings().minSize
    @Option(help: table.argumentHelp("max_hole")) var maxHole = InstanceSettings().maxHole
    @Flag(help: table.argumentHelp("exclude_border")) var excludeBorder = false
    @Option(help: table.argumentHelp("truth")) var truth = ObjectOptions().truth

    /// The options asked for.
    var options: ObjectOptions {
        var o = ObjectOptions()
        o.method = instances
        o.rules.connectivity = connectivity
        o.rules.seeds = seeds
        o.rules.seedDepth = seedDepth
        o.rules.minSize = minSize
        o.rules.maxHole = maxHole
        o.rules.excludeBorder = excludeBorder
        o.truth = truth
        return o
    }

    /// The settings asked for (nil without --instances).
    var settings: InstanceSettings? { options.settings }
}
