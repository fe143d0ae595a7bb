import ArgumentParser
import TesseraInference
import TesseraObjects

extension InstanceMethod: ExpressibleByArgument {}
extension SeedSource: ExpressibleByArgument {}
extension Connectivity: ExpressibleByArgument {}
extension TruthKind: ExpressibleByArgument {}

/// `--instances` and its rules, shared by `segment` and `eval`.
struct InstanceOptions: ParsableArguments {
    @Option(help: "Objects of each mask: connected components of each class, or a watershed for touching ones.")
    var instances: InstanceMethod?
    @Option(help: "Pixels that touch by an edge (4) or also by a corner (8) are one object.")
    var connectivity = InstanceSettings().connectivity
    @Option(help: "Watershed seeds: peaks of the distance to the edge or of the class probability.")
    var seeds = InstanceSettings().seeds
    @Option(
        help:
            "How far a peak must rise above the pass to a higher one to seed its own object (pixels for distance, probability for probability seeds; default 2 or 0.1)."
    )
    var seedDepth: Double?
    @Option(help: "Drop objects of fewer pixels.") var minSize = 0
    @Option(help: "Fill holes of at most this many pixels inside objects first.") var maxHole = 0
    @Flag(help: "Drop objects that touch the image border.") var excludeBorder = false
    @Option(help: "What the truth masks hold: class ids (made into objects as predictions are) or object ids.")
    var truth = TruthKind.classes

    /// The settings asked for (nil without --instances).
    var settings: InstanceSettings? {
        guard let instances else { return nil }
        var s = InstanceSettings()
        s.method = instances
        s.connectivity = connectivity
        s.seeds = seeds
        s.seedDepth = seedDepth
        s.minSize = minSize
        s.maxHole = maxHole
        s.excludeBorder = excludeBorder
        return s
    }

    func validate() throws {
        if truth == .objects && instances == nil {
            throw ValidationError("--truth objects scores objects: add --instances")
        }
        if let problem = settings.flatMap({ InstanceSettingsCheck.problem($0) }) { throw ValidationError(problem) }
    }
}
